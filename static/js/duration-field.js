// Show the end-date field only when "Until a date" is chosen. Without JavaScript the field
// simply stays visible; the server ignores it for open-ended access.
(function () {
  "use strict";
  var endsAt = document.getElementById("id_ends_at");
  var choices = document.querySelectorAll("input[name=duration]");
  if (!endsAt || !choices.length) return;
  var field = endsAt.closest(".field") || endsAt.parentNode;
  function update() {
    var chosen = document.querySelector("input[name=duration]:checked");
    field.hidden = !chosen || chosen.value !== "until";
  }
  choices.forEach(function (choice) { choice.addEventListener("change", update); });
  update();
})();
