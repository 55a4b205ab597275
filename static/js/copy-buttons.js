// A Copy button after every block marked data-copy="<what it is>" (snippets, secrets,
// credentials URIs). The buttons are made here, not in the markup, so a page without
// JavaScript shows none that could not work. The copied text is read from the block when the
// button is pressed and lives nowhere else.
// Every word the buttons show comes from the page, in the reader's language: the script tag
// (templates/includes/copy_buttons_script.html) carries the translated labels as data-label-*,
// "{what}" standing for the block's own (translated) data-copy name.
(() => {
  const FEEDBACK_MS = 2500;
  const labels = (document.currentScript && document.currentScript.dataset) || {};
  const fill = (template, what) => (template || "").split("{what}").join(what);

  // Outside a secure context (plain http on a host other than localhost) there is no
  // navigator.clipboard; a selected, off-screen textarea and execCommand still copy there.
  function copyBySelection(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-scratch";
    document.body.appendChild(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    area.remove();
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(() => copyBySelection(text));
    }
    return copyBySelection(text);
  }

  function addButton(block) {
    const what = block.dataset.copy || "";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button-secondary button-small copy-button";
    button.textContent = labels.labelCopy;
    button.setAttribute("aria-label", fill(labels.labelCopyWhat, what));
    // Announced to screen readers when the label below changes.
    const status = document.createElement("span");
    status.className = "visually-hidden copy-status";
    status.setAttribute("role", "status");
    let timer = null;
    const say = (text, state) => {
      button.textContent = state === "copied" ? labels.labelCopied : labels.labelCopy;
      button.dataset.copyState = state;
      status.textContent = text;
      window.clearTimeout(timer);
      timer = window.setTimeout(() => {
        button.textContent = labels.labelCopy;
        delete button.dataset.copyState;
        status.textContent = "";
      }, FEEDBACK_MS);
    };
    button.addEventListener("click", () => {
      copy(block.textContent).then(
        () => say(fill(labels.labelCopiedWhat, what), "copied"),
        () => say(labels.labelFailed, "failed"),
      );
    });
    block.after(button, status);
  }

  document.addEventListener("DOMContentLoaded", () => {
    // Without its labels (a page that loads the script without the include) no button at all,
    // rather than buttons with no words or in the wrong language.
    if (!labels.labelCopy) return;
    document.querySelectorAll("[data-copy]").forEach(addButton);
  });
})();
