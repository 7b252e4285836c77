// The demo page: upload or pick a photo, show what /api/predict returns, magnify a detail.
// body[data-state] is "idle", "busy", "done" or "error" (tests wait on it).
"use strict";

const $ = (id) => document.getElementById(id);
const DETAIL_SIZE = 256; // canvas pixels of each magnified view

let current = null; // the last /api/predict answer
let modelCount = 1;
let center = null; // detail centre, in image pixels
const lensViews = []; // {img, lens}: pictures that show where the detail is
const detailViews = []; // {img, canvas}: the magnified views

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setState(state, message) {
  document.body.dataset.state = state;
  $("status").textContent = message;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function loadInfo() {
  let info;
  try {
    info = await (await fetch("/api/info")).json();
  } catch (e) {
    showError(`The server did not answer (${e.message}). Is tools/demo_app.py still running?`);
    return;
  }
  modelCount = info.models.length;
  for (const model of info.models) {
    const item = el("li");
    item.append(el("b", "", model.name), `: ${model.description}`);
    if (model.device) item.append(` on ${model.device}`);
    $("models").append(item);
  }
  for (const name of info.examples) {
    const button = el("button");
    button.type = "button";
    button.dataset.example = name;
    button.title = `run the models on ${name}`;
    const thumb = el("img");
    thumb.src = `/api/examples/${encodeURIComponent(name)}`;
    thumb.alt = name;
    button.append(thumb, el("span", "", name));
    button.addEventListener("click", () =>
      run(`/api/predict?example=${encodeURIComponent(name)}`, null, name)
    );
    $("examples").append(button);
  }
}

async function run(url, body, label) {
  $("error").hidden = true;
  $("results").hidden = true;
  setState("busy", `Running the model${modelCount > 1 ? "s" : ""} on ${label}`);
  let response, data;
  try {
    response = await fetch(url, { method: "POST", body });
  } catch (e) {
    setState("error", `${label}: no answer.`);
    showError(`The server did not answer (${e.message}). Is tools/demo_app.py still running?`);
    return;
  }
  try {
    data = await response.json();
  } catch (e) {
    data = { error: `the server answered ${response.status} ${response.statusText}` };
  }
  if (!response.ok) {
    setState("error", `${label}: not processed.`);
    showError(data.error || `the server answered ${response.status}`);
    return;
  }
  await show(data);
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

function label(title, ...extra) {
  const cell = el("div", "label");
  cell.append(el("h2", "", title), ...extra);
  return cell;
}

function seconds(value) {
  return `${value.toFixed(2)} s`;
}

// The results grid: one column for the photo (and the row labels), one per model, one for the
// difference of two models; rows: alpha, cutout on a checkerboard, cutout on a colour, details.
async function show(data) {
  current = data;
  lensViews.length = 0;
  detailViews.length = 0;
  const diff = data.difference;
  const names = data.models.map((m) => m.name);
  const rows = { alpha: [], checker: [], colour: [], detailAlpha: [], detailCutout: [] };

  const input = picture([el("b", "", "photo"), `${data.width}\u00d7${data.height} px`], data.input, "img-input");
  rows.alpha.push(input.fig);
  rows.checker.push(label("Cutout on a checkerboard"));
  rows.colour.push(label("Cutout on a colour", $("color")));
  const hint = el("span", "hint", "click or drag on any picture to move it");
  const detailHeader = label("Detail", $("zoom"), hint);
  detailHeader.classList.add("wide");
  rows.detailAlpha.push(detail("photo", input.img));
  rows.detailCutout.push(el("div"));
  const timings = [];
  data.models.forEach((model, i) => {
    const t = model.seconds;
    timings.push(`${model.name}: alpha ${seconds(t.alpha)}, cutout ${seconds(t.cutout)}`);
    const alpha = picture(
      [el("b", "", `${model.name} alpha`), seconds(t.alpha), downloadLink(model.alpha, "download PNG", `dl-alpha-${i}`)],
      model.alpha,
      `img-alpha-${i}`
    );
    rows.alpha.push(alpha.fig);
    rows.detailAlpha.push(detail(`alpha ${model.name}`, alpha.img));
    const checker = picture(
      [el("b", "", `${model.name} cutout`), seconds(t.cutout), downloadLink(model.cutout, "download PNG (RGBA)", `dl-cutout-${i}`)],
      model.cutout,
      `img-cutout-${i}`,
      "checker"
    );
    rows.checker.push(checker.fig);
    rows.detailCutout.push(detail(`cutout ${model.name}`, checker.img, "checker"));
    rows.colour.push(picture([el("b", "", `${model.name} cutout`)], model.cutout, `img-color-${i}`, "colour").fig);
  });
  if (diff) {
    const [a, b] = names;
    const picture_ = picture(
      [el("b", "", `${a} \u2212 ${b}`), `mean |${a}\u2212${b}| ${diff.mean_abs.toFixed(4)}, max ${diff.max_abs.toFixed(3)}`, el("span", "hint", `red: ${a} more opaque, blue: ${b}`)],
      diff.image,
      "img-difference"
    );
    rows.alpha.push(picture_.fig);
    rows.detailAlpha.push(detail(`${a} \u2212 ${b}`, picture_.img));
    for (const row of [rows.checker, rows.colour, rows.detailCutout]) row.push(el("div"));
  }
  const grid = $("results");
  grid.style.gridTemplateColumns = `repeat(${rows.alpha.length}, minmax(0, 1fr))`;
  grid.replaceChildren(...rows.alpha, ...rows.checker, ...rows.colour, detailHeader, ...rows.detailAlpha, ...rows.detailCutout);
  applyColour();
  grid.hidden = false;
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

function runFile(file) {
  if (file) run(`/api/predict?filename=${encodeURIComponent(file.name)}`, file, file.name);
}

$("file").addEventListener("change", () => {
  runFile($("file").files[0]);
  $("file").value = ""; // choosing the same file again runs it again
});
$("color").addEventListener("input", applyColour);
$("zoom").addEventListener("change", drawDetail);
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  document.body.classList.remove("dragging");
  runFile(event.dataTransfer.files[0]);
});
loadInfo();
