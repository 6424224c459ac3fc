// Upload one image file: refused in the browser when over the server's limit (the server checks
// again), otherwise sent to the server trigger. Resolves to an error line, or '' when sent.
window.breast_subtype_upload = async function (files, maxBytes, maxText, triggerName) {
  const file = files && files[0];
  if (!file) {
    return "";
  }
  if (file.size > maxBytes) {
    return `The file is over the ${maxText} MB limit of this server: ${file.name}`;
  }
  await trame.trigger(triggerName, [files]);
  return "";
};
