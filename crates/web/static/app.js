// Progressive enhancement only: every form works without this script.
(function () {
  "use strict";

  // Live character counter under message textareas.
  document.querySelectorAll("textarea[data-max]").forEach(function (area) {
    var max = parseInt(area.getAttribute("data-max"), 10);
    var counter = area.form && area.form.querySelector(".counter");
    if (!counter || !max) return;
    function update() {
      var length = Array.from(area.value.trim()).length;
      counter.textContent = length + " / " + max;
      counter.classList.toggle("over", length > max);
    }
    area.addEventListener("input", update);
    update();
    // Ctrl/Cmd+Enter submits.
    area.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        area.form.requestSubmit();
      }
    });
  });

  // Times in the reader's own time zone and language (the page shows UTC without JS).
  document.querySelectorAll("time[datetime]").forEach(function (time) {
    var date = new Date(time.getAttribute("datetime"));
    if (isNaN(date.getTime())) return;
    time.textContent = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  });

  // Ask before deleting.
  document.querySelectorAll("form.delete-form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm("Delete this message?")) event.preventDefault();
    });
  });
})();
