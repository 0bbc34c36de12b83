// My alerts, channel form: show only the fields of the chosen kind (email, webhook, apprise).
// Without JavaScript every field shows, each saying which kind it is for.
(function () {
  "use strict";
  var form = document.getElementById("channel-form");
  if (!form) return;
  function chosen() {
    var checked = form.querySelector('input[name="kind"]:checked');
    return checked ? checked.value : "";
  }
  function update() {
    var kind = chosen();
    form.querySelectorAll("[data-kinds]").forEach(function (el) {
      var kinds = el.getAttribute("data-kinds").split(" ");
      el.hidden = kind !== "" && kinds.indexOf(kind) < 0;
    });
  }
  form.querySelectorAll('input[name="kind"]').forEach(function (input) {
    input.addEventListener("change", update);
  });
  update();
})();
