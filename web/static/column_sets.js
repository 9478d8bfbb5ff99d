// The data set page: save the columns on show under a name (PUT /api/v1/column-sets/NAME),
// then show the data set with that set chosen.
"use strict";

(() => {
  const form = document.getElementById("save-columns");
  if (!form) return;
  const status = document.getElementById("column-set-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.querySelector('[name="name"]').value.trim();
    const columns = JSON.parse(form.dataset.columns);
    try {
      await nf.api("PUT", `/api/v1/column-sets/${encodeURIComponent(name)}`, {columns});
      const url = new URL(window.location.href);
      for (const key of ["column", "attributes", "after"]) url.searchParams.delete(key);
      url.searchParams.set("set", name);
      window.location.assign(url.toString());
    } catch (error) {
      status.textContent = error.message;
    }
  });
})();
