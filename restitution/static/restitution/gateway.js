/* Small helpers shared by the customer pages; every page works without them.
 *
 * 1. The consent page remembers the customer's choices in this tab (sessionStorage) so that
 *    switching language, which reloads the page, does not re-tick what they unticked.
 * 2. A form marked data-busy="…" shows it is working once submitted: its button is disabled,
 *    reads the data-busy text and the form is aria-busy, so a long action is not pressed twice.
 */
(function () {
  "use strict";

  function consentChoices() {
    var form = document.querySelector("form[data-consent]");
    if (!form || !window.sessionStorage) return;
    var key = "consent-choices:" + window.location.pathname + window.location.search;
    function fields() {
      return Array.prototype.filter.call(form.elements, function (el) {
        return el.name && el.name !== "csrfmiddlewaretoken" && el.type !== "hidden" && el.type !== "submit";
      });
    }
    function save() {
      var state = {};
      fields().forEach(function (el) {
        if (el.type === "checkbox" || el.type === "radio") state[el.name + "=" + el.value] = el.checked;
        else state[el.name] = el.value;
      });
      try { sessionStorage.setItem(key, JSON.stringify(state)); } catch (e) { /* storage full or off */ }
    }
    var saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { saved = null; }
    if (saved && !form.querySelector(".errorlist")) {
      fields().forEach(function (el) {
        if (el.type === "checkbox" || el.type === "radio") {
          var id = el.name + "=" + el.value;
          if (id in saved) el.checked = saved[id];
        } else if (el.name in saved) {
          el.value = saved[el.name];
        }
      });
    }
    form.addEventListener("change", save);
    form.addEventListener("input", save);
    form.addEventListener("submit", function () { try { sessionStorage.removeItem(key); } catch (e) { /* */ } });
  }

  function busyForms() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-busy]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (form.getAttribute("aria-busy") === "true") { event.preventDefault(); return; }
        var button = event.submitter || form.querySelector("button[type=submit], button:not([type])");
        form.setAttribute("aria-busy", "true");
        if (button) {
          // Disabled after the submit has read the button's name and value.
          window.setTimeout(function () {
            button.disabled = true;
            button.classList.add("busy");
            button.textContent = form.getAttribute("data-busy");
          }, 0);
        }
      });
    });
  }

  consentChoices();
  busyForms();
})();
