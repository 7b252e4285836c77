// The demo page: upload or pick a photo; with a trimap-guided model, paint its trimap first;
// show what /api/predict returns; magnify a detail.
// body[data-state] is "idle", "busy", "ready" (painter waiting), "done" or "error", and
// body[data-op] counts the finished operations (tests wait on both).
"use strict";

const $ = (id) => document.getElementById(id);
const DETAIL_SIZE = 256; // canvas pixels of each magnified view
const REQUEST_HEADER = "X-Alphafree-Request"; // the server refuses POSTs without it
const GRID_GAP = 14; // px, as #results .pictures in app.css

let info = null; // /api/info
let painting = false; // a trimap-guided model is loaded: photos open in the painter
let photo = null; // the /api/photos answer of the photo in the painter
let current = null; // the last /api/predict answer
let center = null; // detail centre, in image pixels
let maskFile = null; // the mask of the last auto trimap from a mask
const lensViews = []; // {img, lens}: pictures that show where the detail is
const detailViews = []; // {img, canvas}: the magnified views
const painter = new TrimapPainter($("trimap-canvas"), $("brush-cursor"));

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setState(state, message) {
  document.body.dataset.state = state;
  $("status").textContent = message;
  if (state !== "busy") document.body.dataset.op = String(Number(document.body.dataset.op || 0) + 1);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function fail(label, message) {
  setState("error", `${label}: not processed.`);
  showError(message);
}

// POST with the page's request header; {ok, data} where data is the JSON answer, a Blob for
// images, or {error} when the server refused or did not answer.
async function post(url, body) {
  let response;
  try {
    response = await fetch(url, { method: "POST", body, headers: { [REQUEST_HEADER]: "1" } });
  } catch (e) {
    return { ok: false, data: { error: `The server did not answer (${e.message}). Is tools/demo_app.py still running?` } };
  }
  const type = response.headers.get("content-type") || "";
  if (response.ok && type.startsWith("image/")) return { ok: true, data: await response.blob() };
  let data;
  try {
    data = await response.json();
  } catch (e) {
    data = { error: `the server answered ${response.status} ${response.statusText}` };
  }
  if (!response.ok && !data.error) data.error = `the server answered ${response.status}`;
  return { ok: response.ok, data };
}

async function loadInfo() {
  try {
    info = await (await fetch("/api/info")).json();
  } catch (e) {
    showError(`The server did not answer (${e.message}). Is tools/demo_app.py still running?`);
    return;
  }
  painting = info.models.some((m) => m.trimap_input);
  document.body.dataset.mode = painting ? "painting" : "automatic";
  if (info.refine && info.refine.models.length) {
    $("refine-controls").hidden = false;
    $("refine-steps").value = info.refine.steps;
    $("refine-steps").max = info.refine.max_steps;
  }
  for (const model of info.models) {
    const item = el("li");
    item.append(el("b", "", model.name), `: ${model.description}`);
    if (model.device) item.append(` on ${model.device}`);
    $("models").append(item);
  }
  for (const example of info.examples) {
    const button = el("button");
    button.type = "button";
    button.dataset.example = example.name;
    button.title = `${painting ? "open" : "run the models on"} ${example.name}${example.trimap ? " (with its trimap)" : ""}`;
    const thumb = el("img");
    thumb.src = `/api/examples/${encodeURIComponent(example.name)}`;
    thumb.alt = example.name;
    button.append(thumb, el("span", "", example.name + (painting && example.trimap ? " \u25d1" : "")));
    button.addEventListener("click", () => chooseExample(example.name));
    $("examples").append(button);
  }
  const automatic = info.models.filter((m) => !m.trimap_input);
  $("auto-model").hidden = automatic.length === 0;
  for (const model of automatic) $("auto-model-name").append(new Option(model.name, model.name));
  $("auto-low").value = info.auto_trimap.low;
  $("auto-high").value = info.auto_trimap.high;
  $("auto-band").value = info.auto_trimap.band;
  $("mask-band").value = info.auto_trimap.band;
  $("status").textContent = painting
    ? "Choose a photo, then paint its trimap (everything starts unknown)."
    : "Choose a photo.";
}

// -- choosing a photo -----------------------------------------------------------------------

function fileName(file) {
  return file.name.replace(/[\u0000-\u001f\u007f]/g, "_"); // the server refuses control characters
}

function chooseFile(file) {
  if (!file) return;
  const query = `filename=${encodeURIComponent(fileName(file))}`;
  if (painting) openPhoto(`/api/photos?${query}`, file, file.name);
  else predict(`/api/predict?${query}`, file, file.name);
}

function chooseExample(name) {
  const query = `example=${encodeURIComponent(name)}`;
  if (painting) openPhoto(`/api/photos?${query}`, null, name);
  else predict(`/api/predict?${query}`, null, name);
}

function loaded(img) {
  return new Promise((resolve) => {
    if (img.complete && img.naturalWidth) resolve();
    else {
      img.addEventListener("load", resolve, { once: true });
      img.addEventListener("error", resolve, { once: true });
    }
  });
}

// The photo in the painter as large as the page allows (small photos are scaled up, large
// ones down), at most 75 % of the window's height.
function fitStage() {
  if (!photo || $("painter").hidden) return;
  const style = getComputedStyle($("painter"));
  const available = $("painter").clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const byHeight = (0.75 * window.innerHeight * photo.width) / photo.height;
  $("painter-photo").style.width = `${Math.max(1, Math.floor(Math.min(available, byHeight)))}px`;
}

async function openPhoto(url, body, label) {
  $("error").hidden = true;
  setState("busy", `Loading ${label}`);
  const answer = await post(url, body);
  if (!answer.ok) return fail(label, answer.data.error);
  photo = answer.data;
  $("results").hidden = true;
  $("controls").hidden = true;
  painter.reset(photo.width, photo.height);
  $("painter-photo").src = photo.image;
  $("painter").hidden = false;
  fitStage();
  await loaded($("painter-photo"));
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  fitStage(); // the layout has settled (a scroll bar may have appeared)
  let note = "everything starts unknown";
  if (photo.trimap) {
    const response = await fetch(photo.trimap);
    painter.reset(photo.width, photo.height, await decodeTrimapPng(await response.blob(), photo.width, photo.height));
    note = "its trimap is loaded";
  }
  setState("ready", `${photo.name}: ${photo.width}\u00d7${photo.height} px; ${note}. Paint foreground and background, then Run.`);
}

// -- the painter's tools --------------------------------------------------------------------

function selectBrush(value) {
  painter.brush.value = value;
  for (const button of document.querySelectorAll("#brushes button")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.value) === value));
  }
}

function setBrushSize(size) {
  const value = Math.min(Math.max(Number(size) || 1, Number($("brush-size").min)), Number($("brush-size").max));
  $("brush-size").value = value;
  painter.brush.size = Number($("brush-size").value);
  $("brush-size-value").textContent = `${painter.brush.size} px`;
}

function updateHistoryButtons() {
  $("undo").disabled = painter.undoStack.length === 0;
  $("redo").disabled = painter.redoStack.length === 0;
}

// Replace the painted trimap by the PNG a POST answers (load, auto trimap).
async function trimapFromServer(url, body, label) {
  if (!photo) return;
  $("error").hidden = true;
  setState("busy", label);
  const answer = await post(url, body);
  if (!answer.ok) return fail(label, answer.data.error);
  try {
    painter.setValues(await decodeTrimapPng(answer.data, photo.width, photo.height));
  } catch (e) {
    return fail(label, e.message);
  }
  const counts = painter.counts();
  const share = (v) => `${Math.round((100 * counts[v]) / painter.values.length)} %`;
  setState("ready", `${label}: foreground ${share(255)}, background ${share(0)}, unknown ${share(128)}; paint over it to correct it, then Run.`);
}

function photoUrl(action, params) {
  return `/api/photos/${photo.photo}/${action}?${new URLSearchParams(params)}`;
}

function loadTrimapFile(file) {
  if (file) trimapFromServer(photoUrl("trimap", { filename: fileName(file) }), file, `Trimap ${file.name}`);
}

function autoFromModel() {
  const params = { model: $("auto-model-name").value, low: $("auto-low").value, high: $("auto-high").value, band: $("auto-band").value };
  trimapFromServer(photoUrl("auto-trimap", params), null, `Auto trimap from model ${params.model}`);
}

function autoFromMask() {
  if (!maskFile) return;
  const params = { filename: fileName(maskFile), band: $("mask-band").value };
  trimapFromServer(photoUrl("auto-trimap", params), maskFile, `Auto trimap from ${maskFile.name}`);
}

async function downloadTrimap() {
  if (!photo) return;
  const link = el("a");
  link.href = URL.createObjectURL(await painter.toPng());
  link.download = `${photo.name}_trimap.png`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

async function runPainted() {
  if (!photo) return;
  const params = new URLSearchParams({ photo: photo.photo, filename: "trimap.png", reference: $("reference").checked ? "1" : "0" });
  if (!$("refine-controls").hidden && $("refine").checked) params.set("refine_steps", $("refine-steps").value);
  await predict(`/api/predict?${params}`, await painter.toPng(), photo.name);
}

// -- predictions and their results ----------------------------------------------------------

async function predict(url, body, label) {
  $("error").hidden = true;
  $("results").hidden = true;
  $("controls").hidden = true;
  if (!painting) $("painter").hidden = true;
  const count = info ? info.models.length : 1;
  setState("busy", `Running the model${count > 1 ? "s" : ""} on ${label}`);
  const answer = await post(url, body);
  if (!answer.ok) return fail(label, answer.data.error);
  await show(answer.data);
}

function downloadLink(url, text, id) {
  const link = el("a", "", text);
  link.href = `${url}?download=1`;
  link.download = "";
  link.id = id;
  return link;
}

function picture(captionParts, src, id, frameClass) {
  const fig = el("figure");
  const caption = el("figcaption");
  caption.append(...captionParts);
  const frame = el("div", `frame ${frameClass || ""}`);
  const img = el("img");
  img.src = src;
  img.id = id;
  img.alt = id;
  img.draggable = false;
  const lens = el("div", "lens");
  frame.append(img, lens);
  fig.append(caption, frame);
  lensViews.push({ img, lens });
  frame.addEventListener("pointerdown", (event) => {
    frame.setPointerCapture(event.pointerId);
    moveDetail(event, img);
  });
  frame.addEventListener("pointermove", (event) => {
    if (frame.hasPointerCapture(event.pointerId)) moveDetail(event, img);
  });
  return { fig, img };
}

function detail(caption, img, canvasClass) {
  const fig = el("figure");
  fig.append(el("figcaption", "", caption));
  const canvas = el("canvas", canvasClass || "");
  canvas.width = DETAIL_SIZE;
  canvas.height = DETAIL_SIZE;
  fig.append(canvas);
  detailViews.push({ img, canvas });
  return fig;
}

function group(id, title, extra, items, minWidth) {
  const section = el("section", "group");
  section.id = id;
  const heading = el("h2", "", title);
  heading.append(...extra);
  const grid = el("div", "pictures");
  grid.dataset.min = String(minWidth);
  grid.append(...items);
  section.append(heading, grid);
  return section;
}

function seconds(value) {
  return `${value.toFixed(2)} s`;
}

// Columns of each picture grid: as many as fit, then evened out over the rows, so that no row
// is left with a hole (7 pictures where 5 fit: 4 + 3, not 5 + 2).
function layoutGrids() {
  for (const grid of document.querySelectorAll("#results .pictures")) {
    const count = grid.children.length;
    const fit = Math.max(1, Math.floor((grid.clientWidth + GRID_GAP) / (Number(grid.dataset.min) + GRID_GAP)));
    const rows = Math.ceil(count / Math.min(count, fit));
    grid.style.setProperty("--cols", String(Math.max(1, Math.ceil(count / rows))));
  }
}

// The results, in three groups that flow in balanced rows: alpha mattes (photo, trimap, each
// model, the difference), cutouts (on a checkerboard, on a colour) and magnified details.
async function show(data) {
  current = data;
  lensViews.length = 0;
  detailViews.length = 0;
  const alphas = [];
  const checkers = [];
  const colours = [];
  const detailAlpha = [];
  const detailCutout = [];
  const input = picture([el("b", "", "photo"), `${data.width}\u00d7${data.height} px`], data.input, "img-input");
  alphas.push(input.fig);
  detailAlpha.push(detail("photo", input.img));
  if (data.trimap) {
    const trimap = picture([el("b", "", "trimap"), downloadLink(data.trimap, "download PNG", "dl-trimap")], data.trimap, "img-trimap");
    alphas.push(trimap.fig);
  }
  const guided = data.models.findIndex((m) => m.kind === "trimap" && m.alpha);
  const tested = guided >= 0 ? guided : data.models.findIndex((m) => m.alpha);
  const timings = [];
  data.models.forEach((model, i) => {
    if (model.error) {
      const fig = el("figure", "failed");
      fig.id = `model-error-${i}`;
      const caption = el("figcaption");
      caption.append(el("b", "", `${model.name} alpha`));
      fig.append(caption, el("p", "model-error", model.error));
      alphas.push(fig);
      timings.push(`${model.name}: failed`);
      return;
    }
    const t = model.seconds;
    timings.push(`${model.name}: alpha ${seconds(t.alpha)}, cutout ${seconds(t.cutout)}`);
    const caption = [el("b", "", `${model.name} alpha`), seconds(t.alpha)];
    if (model.note) caption.push(el("span", "hint", model.note));
    caption.push(downloadLink(model.alpha, "download PNG", `dl-alpha-${i}`));
    const alpha = picture(caption, model.alpha, `img-alpha-${i}`);
    if (i === tested) alpha.img.dataset.testid = "alpha-image";
    alphas.push(alpha.fig);
    detailAlpha.push(detail(`alpha ${model.name}`, alpha.img));
    const checker = picture(
      [el("b", "", `${model.name} cutout`), seconds(t.cutout), downloadLink(model.cutout, "download PNG (RGBA)", `dl-cutout-${i}`)],
      model.cutout,
      `img-cutout-${i}`,
      "checker"
    );
    checkers.push(checker.fig);
    detailCutout.push(detail(`cutout ${model.name}`, checker.img, "checker"));
    colours.push(picture([el("b", "", `${model.name} on a colour`)], model.cutout, `img-color-${i}`, "colour").fig);
  });
  const diff = data.difference;
  if (diff) {
    const [a, b] = data.models.map((m) => m.name);
    const difference = picture(
      [el("b", "", `${a} \u2212 ${b}`), `mean |${a}\u2212${b}| ${diff.mean_abs.toFixed(4)}, max ${diff.max_abs.toFixed(3)}`, el("span", "hint", `red: ${a} more opaque, blue: ${b}`)],
      diff.image,
      "img-difference"
    );
    alphas.push(difference.fig);
    detailAlpha.push(detail(`${a} \u2212 ${b}`, difference.img));
  }
  const hint = el("span", "hint", "click or drag on any picture to move it");
  const groups = [group("group-alpha", "Alpha mattes", [], alphas, 240)];
  if (checkers.length) {
    groups.push(group("group-cutout", "Cutouts, on a checkerboard and on", [$("color")], [...checkers, ...colours], 240));
    groups.push(group("group-detail", "Detail", [$("zoom"), hint], [...detailAlpha, ...detailCutout], 150));
  }
  $("results").replaceChildren(...groups);
  applyColour();
  $("results").hidden = false;
  layoutGrids();
  await Promise.all(lensViews.map((v) => loaded(v.img)));
  center = { x: data.width / 2, y: data.height / 2 };
  drawDetail();
  setState("done", `${data.name}: ${data.width}\u00d7${data.height} px, ${seconds(data.seconds)} in all (${timings.join("; ")}).`);
}

function moveDetail(event, img) {
  if (!current) return;
  const rect = img.getBoundingClientRect();
  if (!rect.width || !rect.height) return;
  const fx = (event.clientX - rect.left) / rect.width;
  const fy = (event.clientY - rect.top) / rect.height;
  center = {
    x: Math.min(Math.max(fx, 0), 1) * current.width,
    y: Math.min(Math.max(fy, 0), 1) * current.height,
  };
  drawDetail();
}

function drawDetail() {
  if (!current || !center) return;
  const side = DETAIL_SIZE / Number($("zoom").value); // image pixels shown
  const x0 = Math.max(0, Math.min(center.x - side / 2, current.width - side));
  const y0 = Math.max(0, Math.min(center.y - side / 2, current.height - side));
  for (const { img, canvas } of detailViews) {
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, x0, y0, side, side, 0, 0, canvas.width, canvas.height);
  }
  for (const { lens } of lensViews) {
    lens.style.left = `${(100 * x0) / current.width}%`;
    lens.style.top = `${(100 * y0) / current.height}%`;
    lens.style.width = `${(100 * Math.min(side, current.width)) / current.width}%`;
    lens.style.height = `${(100 * Math.min(side, current.height)) / current.height}%`;
  }
}

function applyColour() {
  for (const frame of document.querySelectorAll(".frame.colour")) {
    frame.style.background = $("color").value;
  }
}

// -- wiring ---------------------------------------------------------------------------------

function onFile(input, handler) {
  input.addEventListener("change", () => {
    const file = input.files[0];
    input.value = ""; // choosing the same file again acts again
    handler(file);
  });
}

onFile($("file"), chooseFile);
onFile($("trimap-file"), loadTrimapFile);
onFile($("mask-file"), (file) => {
  maskFile = file || maskFile;
  autoFromMask();
});
for (const button of document.querySelectorAll("#brushes button")) {
  button.addEventListener("click", () => selectBrush(Number(button.dataset.value)));
}
$("brush-size").addEventListener("input", () => setBrushSize($("brush-size").value));
$("undo").addEventListener("click", () => painter.undo());
$("redo").addEventListener("click", () => painter.redo());
$("clear").addEventListener("click", () => painter.clear());
$("trimap-download").addEventListener("click", downloadTrimap);
$("auto-from-model").addEventListener("click", autoFromModel);
$("mask-band").addEventListener("change", autoFromMask);
$("run").addEventListener("click", runPainted);
$("overlay").addEventListener("input", () => $("stage").style.setProperty("--overlay", String($("overlay").value / 100)));
painter.onchange = updateHistoryButtons;
$("color").addEventListener("input", applyColour);
$("zoom").addEventListener("change", drawDetail);
new ResizeObserver(layoutGrids).observe($("results"));
new ResizeObserver(fitStage).observe($("painter"));
window.addEventListener("resize", fitStage);
document.addEventListener("keydown", (event) => {
  if ($("painter").hidden || event.target.matches("input:not([type=range]), select, textarea")) return;
  const key = event.key.toLowerCase();
  if ((event.ctrlKey || event.metaKey) && key === "z") painter[event.shiftKey ? "redo" : "undo"]();
  else if ((event.ctrlKey || event.metaKey) && key === "y") painter.redo();
  else if (event.ctrlKey || event.metaKey || event.altKey) return;
  else if (key === "f") selectBrush(255);
  else if (key === "b") selectBrush(0);
  else if (key === "u" || key === "e") selectBrush(128);
  else if (key === "[" || key === "]") setBrushSize(painter.brush.size * (key === "]" ? 1.25 : 0.8));
  else return;
  event.preventDefault();
});
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  document.body.classList.remove("dragging");
  chooseFile(event.dataTransfer.files[0]);
});
selectBrush(255);
setBrushSize($("brush-size").value);
loadInfo();
