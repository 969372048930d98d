// DeepInsight web page: choose or drop an image, POST it to /predict, show the verdict.
// document.body.dataset.state is idle | scoring | done | error (the tests wait on it).
// When the server scored faces (a face model, or faces=detect), the answer lists them with
// their boxes: each is outlined over the preview and listed; the verdict is the highest score.
"use strict";

const $ = (id) => document.getElementById(id);
const fileInput = $("file-input");
const camToggle = $("cam-toggle");
const dropZone = $("drop-zone");
const errorBox = $("error");
const preview = $("preview");
const heatmap = $("heatmap");
const faceBoxes = $("face-boxes");
const PREVIEW_ALT = preview.alt;

const STATUS = {
  idle: "Choose an image to score.",
  scoring: "Scoring…",
  done: "Done. Choose another image to score it.",
  error: "The image was not scored:",
};

let currentFile = null;
let previewUrl = null;
let requestId = 0; // an answer to a request that a newer one replaced is dropped

function setState(state) {
  document.body.dataset.state = state;
  $("status").textContent = STATUS[state];
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function hideError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

// The server's one-line message ({"error": ...}), or the HTTP status when the body has none.
function errorMessage(response, body) {
  if (body && typeof body.error === "string" && body.error) return body.error;
  return `The server answered HTTP ${response.status} ${response.statusText}`.trim() + ".";
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (_) {
    return null;
  }
}

async function loadInfo() {
  try {
    const response = await fetch("/info");
    const info = parseJson(await response.text());
    if (!response.ok) throw new Error(errorMessage(response, info));
    $("model").textContent = info && info.model ? info.model : "unknown";
  } catch (err) {
    $("model").textContent = "unknown";
    showError(`Could not read the model's description (/info): ${err.message}`);
  }
}

function choose(file) {
  if (!file) return;
  currentFile = file;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  preview.hidden = false;
  preview.src = previewUrl;
  $("filename").textContent = file.name;
  $("result").hidden = false;
  score();
}

async function score() {
  if (!currentFile) return;
  const id = ++requestId;
  const cam = camToggle.checked;
  hideError();
  $("verdict-panel").hidden = true;
  $("heatmap-figure").hidden = true;
  clearFaces();
  setState("scoring");

  const form = new FormData();
  form.append("file", currentFile, currentFile.name);
  try {
    let response;
    try {
      response = await fetch("/predict?cam=" + cam, { method: "POST", body: form });
    } catch (err) {
      throw new Error(`Could not reach the server (${err.message}).`);
    }
    const body = parseJson(await response.text());
    if (id !== requestId) return;
    if (!response.ok) throw new Error(errorMessage(response, body));
    if (!body || typeof body.score !== "number") {
      throw new Error("The server's answer holds no score.");
    }
    await show(body, cam, id);
    if (id !== requestId) return;
    setState("done");
  } catch (err) {
    if (id !== requestId) return;
    showError(err.message);
    setState("error");
  }
}

async function show(body, cam, id) {
  const verdict = $("verdict");
  const fake = body.prediction === "fake";
  verdict.textContent = fake ? "FAKE" : "REAL";
  verdict.className = "verdict " + (fake ? "fake" : "real");
  $("score").textContent = body.score.toFixed(4);
  $("score").dataset.value = String(body.score); // the full value, for tests and copy-paste
  $("threshold").textContent = Number(body.threshold).toFixed(4);
  const faces = Array.isArray(body.faces) ? body.faces : [];
  $("score-note").hidden = faces.length === 0;
  if (faces.length) {
    listFaces(faces);
    await drawFaces(faces);
    if (id !== requestId) return;
  }
  if (body.model) $("model").textContent = body.model;
  if (cam) {
    if (!body.cam_png) throw new Error("The server sent no heatmap.");
    heatmap.src = "data:image/png;base64," + body.cam_png;
    try {
      await heatmap.decode();
    } catch (_) {
      throw new Error("The server's heatmap is not an image the browser can show.");
    }
    // With several faces, say whose heatmap it is: the face that decided the verdict.
    $("heatmap-caption").textContent =
      faces.length > 1 && body.cam_face !== undefined
        ? `Heatmap (Grad-CAM) of face ${body.cam_face}, the highest score`
        : "Heatmap (Grad-CAM)";
    $("heatmap-figure").hidden = false;
  }
  $("verdict-panel").hidden = false;
}

function clearFaces() {
  faceBoxes.replaceChildren();
  faceBoxes.hidden = true;
  $("faces-list").replaceChildren();
  $("faces").hidden = true;
  $("score-note").hidden = true;
  preview.alt = PREVIEW_ALT;
}

const verdictOf = (face) => (face.prediction === "fake" ? "fake" : "real");

// "face 0: fake 0.9100", one line per face, largest face first (the server's order).
function listFaces(faces) {
  const items = faces.map((face) => {
    const item = document.createElement("li");
    item.className = verdictOf(face);
    item.dataset.value = String(face.score);
    item.textContent = `face ${face.face}: ${verdictOf(face)} ${Number(face.score).toFixed(4)}`;
    return item;
  });
  $("faces-list").replaceChildren(...items);
  $("faces-title").textContent = faces.length === 1 ? "1 face found" : `${faces.length} faces found`;
  $("faces").hidden = false;
}

// Boxes are placed in percent of the picture's own size, so they follow the displayed size.
async function drawFaces(faces) {
  try {
    await preview.decode();
  } catch (_) {
    return; // no preview in this browser (or a newer image replaced it): the list remains
  }
  const width = preview.naturalWidth;
  const height = preview.naturalHeight;
  if (!width || !height) return;
  const boxes = faces
    .filter((face) => Array.isArray(face.box) && face.box.length === 4)
    .map((face) => {
      const [x0, y0, x1, y1] = face.box.map(Number);
      const box = document.createElement("div");
      box.className = "face-box " + verdictOf(face);
      box.dataset.face = String(face.face);
      box.style.left = `${(100 * x0) / width}%`;
      box.style.top = `${(100 * y0) / height}%`;
      box.style.width = `${(100 * (x1 - x0)) / width}%`;
      box.style.height = `${(100 * (y1 - y0)) / height}%`;
      const label = document.createElement("span");
      // Near the top edge the label goes under the box, near the right edge it ends at the
      // box's right side: so it stays over the picture.
      label.className = "face-label" + (y0 < 0.1 * height ? " below" : "");
      if (x0 > 0.6 * width) label.classList.add("end");
      label.textContent = `${face.face}: ${verdictOf(face)} ${Number(face.score).toFixed(2)}`;
      box.append(label);
      return box;
    });
  faceBoxes.replaceChildren(...boxes);
  faceBoxes.hidden = boxes.length === 0;
  const count = boxes.length === 1 ? "1 face" : `${boxes.length} faces`;
  preview.alt = `${PREVIEW_ALT}, with ${count} outlined`;
}

// A file the browser cannot display (e.g. TIFF) is still scored; only its preview is dropped.
preview.addEventListener("error", () => {
  if (!preview.src) return;
  preview.hidden = true;
  $("filename").textContent = `${currentFile ? currentFile.name : ""} (no preview in this browser)`;
});

fileInput.addEventListener("change", () => {
  choose(fileInput.files[0]);
  fileInput.value = ""; // so that choosing the same file again scores it again
});

// Re-score the current image when the heatmap is switched on or off.
camToggle.addEventListener("change", score);

// Drops anywhere on the page are taken (the browser would otherwise open the file instead).
let dragDepth = 0;
window.addEventListener("dragenter", (event) => {
  event.preventDefault();
  dragDepth += 1;
  dropZone.classList.add("dragover");
});
window.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) dropZone.classList.remove("dragover");
});
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => {
  event.preventDefault();
  dragDepth = 0;
  dropZone.classList.remove("dragover");
  const files = event.dataTransfer ? event.dataTransfer.files : null;
  if (files && files.length) choose(files[0]);
});

setState("idle");
loadInfo();
