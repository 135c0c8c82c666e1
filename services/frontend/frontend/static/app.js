"use strict";
(function () {
  const cfg = window.SOMMELIER_CONFIG || {};
  const $ = (id) => document.getElementById(id);
  const example = {
    features: {
      alcohol: 13.2, malic_acid: 1.78, ash: 2.14, alcalinity_of_ash: 11.2, magnesium: 100,
      total_phenols: 2.65, flavanoids: 2.76, nonflavanoid_phenols: 0.26, proanthocyanins: 1.28,
      color_intensity: 4.38, hue: 1.05, "od280/od315_of_diluted_wines": 3.4, proline: 1050,
    },
  };

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = "status" + (isError ? " error" : "");
  }

  function showResult(data) {
    const box = $("result");
    box.replaceChildren();
    const label = document.createElement("div");
    label.className = "label";
    label.textContent = data.label;
    box.append(label);
    for (const [name, p] of Object.entries(data.probabilities)) {
      const row = document.createElement("div");
      row.className = "bar";
      row.innerHTML = '<span></span><div class="track"><div class="fill"></div></div><span></span>';
      row.children[0].textContent = name;
      row.querySelector(".fill").style.width = (p * 100).toFixed(1) + "%";
      row.children[2].textContent = (p * 100).toFixed(1) + "%";
      box.append(row);
    }
    const meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = `model ${data.model_version} · prediction ${data.prediction_id}`;
    box.append(meta);
  }

  function describeError(status, body) {
    if (status === 403) return "The API refused the key (403).";
    if (status === 429) return "Too many requests (429): wait a few seconds and try again.";
    const err = body && body.error;
    if (!err) return `The API answered ${status}.`;
    const details = (err.details || []).map((d) => `${d.field}: ${d.message}`).join("; ");
    return `${err.message}${details ? " — " + details : ""}`;
  }

  async function predict() {
    let body;
    try { body = JSON.parse($("body").value); } catch (e) { setStatus("The request is not valid JSON: " + e.message, true); return; }
    setStatus("Asking the model…");
    try {
      const resp = await fetch(cfg.apiUrl + "/predict", {
        method: "POST",
        headers: { "Content-Type": "application/json", "x-api-key": cfg.apiKey },
        body: JSON.stringify(body),
      });
      const data = await resp.json().catch(() => null);
      if (!resp.ok) { setStatus(describeError(resp.status, data), true); return; }
      setStatus(`Request ${data.request_id}`);
      showResult(data);
    } catch (e) {
      setStatus("The API cannot be reached: is the stack up? (" + e.message + ")", true);
    }
  }

  $("body").value = JSON.stringify(example, null, 2);
  $("predict").addEventListener("click", predict);
  $("example").addEventListener("click", () => { $("body").value = JSON.stringify(example, null, 2); });
  fetch(cfg.apiUrl + "/health").then((r) => r.json()).then((h) => {
    setStatus(h.model_version ? `API up · model ${h.model_version}` : "API up");
  }).catch(() => setStatus("The API cannot be reached: is the stack up?", true));
})();
