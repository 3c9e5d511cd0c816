/*
 * Address completion for the webmail (SPEC W3, seed §28), served at
 * /mail/js/complete.js.  No inline script is needed (CSP script-src 'self').
 *
 * How to attach it (compose.html or any page):
 *
 *   <input id="to" name="to" data-complete="/mail/contacts/{{ rand }}/complete">
 *   ...
 *   <script src="/mail/js/complete.js" defer></script>
 *
 * Every input with a data-complete="URL" attribute gets a <datalist> of its
 * own (made here, id "complete-<input id or number>").  As the user types,
 * the part after the last comma or semicolon is sent as URL?q=PART (same
 * origin, with the session cookie); the answer is a JSON list of
 * "Name <address>" strings (at most 10).  Each offer keeps what was typed
 * before that part, so choosing one completes only the address being typed:
 * "a@x.test, 홍" offers "a@x.test, 홍길동 <hong@far.test>".
 *
 * Requests wait 200 ms after the last key stroke, and an answer that arrives
 * after a newer request was sent is dropped.  Without JavaScript (or when the
 * request fails) the input is a plain text field.
 */
(function () {
  "use strict";

  var DELAY_MS = 200;
  var counter = 0;

  function lastPart(value) {
    var cut = Math.max(value.lastIndexOf(","), value.lastIndexOf(";"));
    return {
      head: cut >= 0 ? value.slice(0, cut + 1) + " " : "",
      part: value.slice(cut + 1).replace(/^\s+/, "")
    };
  }

  function attach(input) {
    var url = input.getAttribute("data-complete");
    if (!url || input.getAttribute("data-complete-ready")) {
      return;
    }
    input.setAttribute("data-complete-ready", "1");
    counter += 1;
    var list = document.createElement("datalist");
    list.id = "complete-" + (input.id || counter);
    input.parentNode.insertBefore(list, input.nextSibling);
    input.setAttribute("list", list.id);
    input.setAttribute("autocomplete", "off");

    var timer = null;
    var sent = 0;

    function fill(head, items) {
      while (list.firstChild) {
        list.removeChild(list.firstChild);
      }
      items.forEach(function (item) {
        if (typeof item !== "string") {
          return;
        }
        var option = document.createElement("option");
        option.value = head + item;  // a property, never HTML: nothing is parsed
        list.appendChild(option);
      });
    }

    function ask() {
      var split = lastPart(input.value);
      if (split.part.length < 1 || split.part.indexOf(">") >= 0) {
        fill("", []);
        return;
      }
      sent += 1;
      var mine = sent;
      var sep = url.indexOf("?") >= 0 ? "&" : "?";
      fetch(url + sep + "q=" + encodeURIComponent(split.part), {
        credentials: "same-origin",
        headers: {"Accept": "application/json"}
      }).then(function (response) {
        if (!response.ok) {
          throw new Error("completion: " + response.status);
        }
        return response.json();
      }).then(function (items) {
        if (mine === sent && Array.isArray(items)) {
          fill(split.head, items);
        }
      }).catch(function () {
        fill("", []);
      });
    }

    input.addEventListener("input", function () {
      if (timer !== null) {
        clearTimeout(timer);
      }
      timer = setTimeout(ask, DELAY_MS);
    });
  }

  function start() {
    var inputs = document.querySelectorAll("input[data-complete]");
    for (var i = 0; i < inputs.length; i += 1) {
      attach(inputs[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
