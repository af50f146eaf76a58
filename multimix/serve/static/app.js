// The upload page: send the file, show the verdict, the two overlays and the reference map.
"use strict";

const $ = (id) => document.getElementById(id);
let reference = null;

async function loadModel() {
  try {
    const model = await (await fetch("/api/model")).json();
    const metrics = model.validation_metrics || {};
    const accuracy = metrics.accuracy !== undefined ? `, validation accuracy ${metrics.accuracy.toFixed(3)}` : "";
    $("model-line").textContent = `${model.name} at ${model.image_size} px${accuracy}`;
    $("limit").textContent = model.max_upload_mb;
    if (model.reference_map) reference = await (await fetch("/api/reference")).json();
  } catch (err) {
    $("model-line").textContent = "the model description could not be loaded";
  }
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function send(file) {
  setStatus(`analysing ${file.name}\u2026`);
  let response;
  try {
    response = await fetch("/api/predict", { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } });
  } catch (err) {
    setStatus(`the server could not be reached: ${err}`, true);
    return;
  }
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    setStatus(`${file.name}: ${payload.detail || response.statusText}`, true);
    return;
  }
  setStatus(`${file.name}: ${payload.width} \u00d7 ${payload.height} px`);
  show(payload);
}

function show(result) {
  $("result").hidden = false;
  const text = $("class-text");
  if (result.predicted_class) {
    const called = `${result.predicted_class} (P = ${(100 * result.probability).toFixed(1)}%`;
    text.textContent = `${called}; pneumonia is called from P(pneumonia) = ${(100 * result.class_threshold).toFixed(1)}%)`;
    text.className = result.predicted_class;
    $("probability-bar").style.width = `${100 * (result.probabilities.pneumonia ?? 0)}%`;
    const mark = $("threshold-mark");  // where pneumonia starts being called
    mark.style.left = `${100 * result.class_threshold}%`;
    mark.style.display = "block";
  } else {
    text.textContent = "this model has no classifier";
    text.className = "";
  }
  const lung = result.lung_fraction === null ? "no lung mask" : `lungs cover ${(100 * result.lung_fraction).toFixed(1)}% of the image`;
  const probs = result.probabilities
    ? `P(pneumonia) = ${result.probabilities.pneumonia.toFixed(3)}, called pneumonia from ${result.class_threshold.toFixed(3)}; `
    : "";
  $("details").textContent = probs + lung;
  $("boundary-image").src = result.images.boundary || result.images.input;
  $("saliency-image").src = result.images.saliency || result.images.input;
  drawMap(result.map_position);
}

function drawMap(position) {
  const svg = $("map");
  $("map-figure").hidden = !reference;
  if (!reference) return;
  const points = reference.points.map((p) => [p.x, p.y, p.label]);
  if (position) points.push([position[0], position[1], "this image"]);
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => 20 + 280 * (x - x0) / ((x1 - x0) || 1);
  const sy = (y) => 300 - 280 * (y - y0) / ((y1 - y0) || 1);
  const colours = { normal: "#0b7a55", pneumonia: "#c2410c", unlabeled: "#8a94a0" };
  let markup = reference.points.map((p) =>
    `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${colours[p.label] || "#8a94a0"}" fill-opacity="0.55"><title>${p.label}</title></circle>`).join("");
  if (position) {
    markup += `<text id="map-star" x="${sx(position[0]).toFixed(1)}" y="${sy(position[1]).toFixed(1)}" font-size="26" text-anchor="middle" dominant-baseline="central" fill="#111" stroke="#fff" stroke-width="1">\u2605</text>`;
  }
  markup += `<text x="24" y="16" font-size="11" fill="#0b7a55">\u25cf normal</text><text x="90" y="16" font-size="11" fill="#c2410c">\u25cf pneumonia</text>`;
  if (reference.points.some((p) => !(p.label in colours) || p.label === "unlabeled")) {  // grey dots say what they are
    markup += `<text id="map-unlabeled" x="176" y="16" font-size="11" fill="#8a94a0">\u25cf no label</text>`;
  }
  svg.innerHTML = markup;
}

function wire() {
  const drop = $("drop"), input = $("file-input");
  input.addEventListener("change", () => input.files.length && send(input.files[0]));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => e.dataTransfer.files.length && send(e.dataTransfer.files[0]));
}

wire();
loadModel();
