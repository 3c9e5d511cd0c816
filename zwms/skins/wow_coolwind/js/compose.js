/*
 * The compose page's simple HTML editor (issue 6, SPEC W2).  Without this
 * script the page is a plain form: the textarea is the message and the
 * hidden field "format" stays "plain".  With it: a switch between plain
 * text and simple HTML, a toolbar (bold, italic, underline, list, link,
 * quote) over a contenteditable area whose HTML goes into the hidden
 * field "html_body" (with format=html) when the form is sent.  The server
 * keeps only its own allow-list of that HTML; nothing here is trusted.
 * Also: a warning when the chosen files are over the size limit.
 */
(function () {
  "use strict";
  var form = document.getElementById("compose");
  if (!form) { return; }
  var format = document.getElementById("format");
  var htmlBody = document.getElementById("html_body");
  var editorBox = document.getElementById("html-editor");
  var editor = document.getElementById("editor");
  var plain = document.getElementById("plain-body");
  var textarea = document.getElementById("body");
  var choice = document.getElementById("format-switch");
  var mode = "plain";

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  function textToHtml(text) {
    return text.replace(/\r\n/g, "\n").split("\n").map(function (line) {
      return "<div>" + (line ? escapeHtml(line) : "<br>") + "</div>";
    }).join("");
  }

  function setMode(next, html) {
    if (next === "html") {
      editor.innerHTML = typeof html === "string" ? html : textToHtml(textarea.value);
      plain.hidden = true;
      editorBox.hidden = false;
    } else {
      if (mode === "html") { textarea.value = editor.innerText; }
      editorBox.hidden = true;
      plain.hidden = false;
    }
    mode = next;
    format.value = next;
    var radios = choice.querySelectorAll("input[name=format_choice]");
    for (var i = 0; i < radios.length; i++) { radios[i].checked = radios[i].value === next; }
  }

  choice.hidden = false;
  choice.addEventListener("change", function (event) {
    if (event.target.name === "format_choice" && event.target.value !== mode) {
      setMode(event.target.value);
      (mode === "html" ? editor : textarea).focus();
    }
  });

  var toolbar = editorBox.querySelector(".toolbar");
  // Keep the editor's selection when a toolbar button is pressed.
  toolbar.addEventListener("mousedown", function (event) {
    if (event.target.closest("button")) { event.preventDefault(); }
  });
  toolbar.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-cmd]");
    if (!button) { return; }
    var cmd = button.getAttribute("data-cmd");
    editor.focus();
    if (cmd === "createLink") {
      var url = window.prompt(button.getAttribute("data-prompt") || "URL", "https://");
      if (url && /^(https?:\/\/|mailto:)/i.test(url.trim())) {
        document.execCommand("createLink", false, url.trim());
      }
    } else if (cmd === "quote") {
      document.execCommand("formatBlock", false, "blockquote");
    } else {
      document.execCommand(cmd, false, null);
    }
  });

  form.addEventListener("submit", function () {
    if (mode === "html") {
      htmlBody.value = editor.innerHTML;
      textarea.value = editor.innerText;
      format.value = "html";
    } else {
      htmlBody.value = "";
      format.value = "plain";
    }
  });

  if (format.getAttribute("data-start") === "html" && htmlBody.value) {
    setMode("html", htmlBody.value);
  }

  // The size limit, before a long upload that would be refused.
  var files = document.getElementById("files");
  var warning = document.getElementById("size-warning");
  var max = parseInt(form.getAttribute("data-max-size"), 10) || 0;
  if (files && warning && max) {
    files.addEventListener("change", function () {
      var total = 0;
      for (var i = 0; i < files.files.length; i++) { total += files.files[i].size; }
      warning.textContent = warning.getAttribute("data-text");
      warning.hidden = total <= max;
    });
  }
}());
