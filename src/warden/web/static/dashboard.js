// warden dashboard: click-to-copy and confirmations. Everything works without this file; it only helps.
(function () {
  "use strict";

  function fallbackCopy(text) {
    // clipboard API needs a secure context; a plain-http dashboard on another host gets the old way
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return fallbackCopy(text);
      });
    }
    return fallbackCopy(text);
  }

  // delegated, so rows swapped in later by htmx work too
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!target) return;
    event.preventDefault();
    copy(target.getAttribute("data-copy") || "").then(function () {
      target.classList.add("copied");
      window.setTimeout(function () {
        target.classList.remove("copied");
      }, 1200);
    });
  });

  // capture phase: runs before htmx's own submit handler on the form, so "Cancel" stops both paths
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement)) return;
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        event.stopPropagation();
      }
    },
    true
  );
})();
