// The trimap painter: a canvas over the photo that holds a trimap at the photo's size
// (0 background, 128 unknown, 255 foreground), painted with pointer events (mouse, pen, touch),
// with undo/redo, and read or written as an 8-bit gray PNG.
"use strict";

const UNKNOWN = 128;
// Canvas colours of the three classes (the canvas is shown with CSS opacity over the photo).
const TRIMAP_RGBA = {
  255: [64, 224, 96, 255], // foreground: green
  0: [230, 40, 90, 255], // background: red
  128: [0, 0, 0, 0], // unknown: clear
};
const HISTORY_BYTES = 256 * 1024 * 1024; // undo memory kept, at most

function snapTrimapValue(v) {
  return v < 85 ? 0 : v >= 170 ? 255 : UNKNOWN; // as alphafree_d2.data.io.snap_trimap
}

class TrimapPainter {
  constructor(canvas, cursor) {
    this.canvas = canvas;
    this.cursor = cursor;
    this.ctx = canvas.getContext("2d");
    this.values = null; // Uint8Array(width * height)
    this.brush = { value: 255, size: 30 }; // size: diameter in screen pixels
    this.undoStack = [];
    this.redoStack = [];
    this.onchange = () => {};
    this.stroke = null;
    canvas.addEventListener("pointerdown", (e) => this._down(e));
    canvas.addEventListener("pointermove", (e) => this._move(e));
    canvas.addEventListener("pointerup", (e) => this._up(e));
    canvas.addEventListener("pointercancel", (e) => this._up(e));
    canvas.addEventListener("pointerleave", () => (this.cursor.hidden = true));
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  }

  get width() {
    return this.canvas.width;
  }

  get height() {
    return this.canvas.height;
  }

  // A new photo: everything unknown, or `values` (Uint8Array of width * height); no history.
  reset(width, height, values) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.values = new Uint8Array(width * height).fill(UNKNOWN);
    if (values) this.values.set(values);
    this.snapshot = new Uint8Array(width * height);
    this.image = this.ctx.createImageData(width, height);
    this.undoStack.length = 0;
    this.redoStack.length = 0;
    this.stroke = null;
    this._render(0, 0, width, height);
    this.onchange();
  }

  counts() {
    const counts = { 0: 0, 128: 0, 255: 0 };
    for (const v of this.values) counts[v] += 1;
    return counts;
  }

  // Replace every value (load, auto trimap, clear) as one undoable step.
  setValues(values) {
    this.snapshot.set(this.values);
    this.values.set(values);
    this._commit(0, 0, this.width, this.height);
    this._render(0, 0, this.width, this.height);
  }

  clear() {
    this.setValues(new Uint8Array(this.values.length).fill(UNKNOWN));
  }

  undo() {
    const patch = this.undoStack.pop();
    if (!patch) return;
    this._apply(patch, patch.before);
    this.redoStack.push(patch);
    this.onchange();
  }

  redo() {
    const patch = this.redoStack.pop();
    if (!patch) return;
    this._apply(patch, patch.after);
    this.undoStack.push(patch);
    this.onchange();
  }

  // The trimap as an 8-bit gray PNG blob (0 / 128 / 255) at the photo's size.
  toPng() {
    return encodeGrayPng(this.values, this.width, this.height);
  }

  // -- pointer input ----------------------------------------------------------------------

  _point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * this.width) / rect.width,
      y: ((event.clientY - rect.top) * this.height) / rect.height,
      scale: this.width / rect.width, // image pixels per screen pixel
    };
  }

  _showCursor(event) {
    if (event.pointerType === "touch") {
      this.cursor.hidden = true;
      return;
    }
    const rect = this.canvas.getBoundingClientRect();
    const size = this.brush.size;
    Object.assign(this.cursor.style, {
      width: `${size}px`,
      height: `${size}px`,
      left: `${event.clientX - rect.left - size / 2}px`,
      top: `${event.clientY - rect.top - size / 2}px`,
    });
    this.cursor.dataset.value = String(this.brush.value);
    this.cursor.hidden = false;
  }

  _down(event) {
    if (!this.values || this.stroke) return;
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    this.canvas.dataset.pointer = event.pointerType; // "mouse", "pen" or "touch"
    this.canvas.setPointerCapture(event.pointerId);
    this.snapshot.set(this.values);
    const p = this._point(event);
    this.stroke = { id: event.pointerId, last: p, box: [Infinity, Infinity, -Infinity, -Infinity] };
    this._segment(p, p);
    this._showCursor(event);
  }

  _move(event) {
    this._showCursor(event);
    if (!this.stroke || event.pointerId !== this.stroke.id) return;
    const events = (event.getCoalescedEvents && event.getCoalescedEvents()) || [];
    for (const e of events.length ? events : [event]) {
      const p = this._point(e);
      this._segment(this.stroke.last, p);
      this.stroke.last = p;
    }
  }

  _up(event) {
    if (!this.stroke || event.pointerId !== this.stroke.id) return;
    if (event.type === "pointerup") this._move(event);
    const [x0, y0, x1, y1] = this.stroke.box;
    this.stroke = null;
    if (x1 >= x0 && y1 >= y0) this._commit(x0, y0, x1 + 1, y1 + 1);
  }

  // Paint the disc of the brush along the segment a -> b (image pixels).
  _segment(a, b) {
    const r = Math.max(0.75, (this.brush.size / 2) * b.scale);
    const steps = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) / Math.max(0.5, r / 2)));
    const box = [Infinity, Infinity, -Infinity, -Infinity];
    for (let i = 0; i <= steps; i++) {
      const t = i / steps;
      this._disc(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, r, box);
    }
    if (box[2] < box[0]) return;
    const s = this.stroke.box;
    s[0] = Math.min(s[0], box[0]);
    s[1] = Math.min(s[1], box[1]);
    s[2] = Math.max(s[2], box[2]);
    s[3] = Math.max(s[3], box[3]);
    this._render(box[0], box[1], box[2] + 1, box[3] + 1);
  }

  // Pixels whose centre lies within r of (cx, cy); box grows to hold them (inclusive).
  _disc(cx, cy, r, box) {
    const { width, height, values } = this;
    const value = this.brush.value;
    const yStart = Math.max(0, Math.ceil(cy - r - 0.5));
    const yEnd = Math.min(height - 1, Math.floor(cy + r - 0.5));
    for (let y = yStart; y <= yEnd; y++) {
      const dy = y + 0.5 - cy;
      const half = Math.sqrt(Math.max(0, r * r - dy * dy));
      const xStart = Math.max(0, Math.ceil(cx - half - 0.5));
      const xEnd = Math.min(width - 1, Math.floor(cx + half - 0.5));
      if (xEnd < xStart) continue;
      values.fill(value, y * width + xStart, y * width + xEnd + 1);
      box[0] = Math.min(box[0], xStart);
      box[1] = Math.min(box[1], y);
      box[2] = Math.max(box[2], xEnd);
      box[3] = Math.max(box[3], y);
    }
  }

  // -- history and drawing ----------------------------------------------------------------

  // Record the change of [x0, x1) x [y0, y1) from this.snapshot to this.values.
  _commit(x0, y0, x1, y1) {
    const patch = { x0, y0, w: x1 - x0, h: y1 - y0 };
    patch.before = this._crop(this.snapshot, patch);
    patch.after = this._crop(this.values, patch);
    this.undoStack.push(patch);
    this.redoStack.length = 0;
    let bytes = 0;
    for (let i = this.undoStack.length - 1; i >= 0; i--) {
      bytes += 2 * this.undoStack[i].before.length;
      if (bytes > HISTORY_BYTES) {
        this.undoStack.splice(0, i + 1);
        break;
      }
    }
    this.onchange();
  }

  _crop(source, { x0, y0, w, h }) {
    const out = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) {
      const start = (y0 + y) * this.width + x0;
      out.set(source.subarray(start, start + w), y * w);
    }
    return out;
  }

  _apply(patch, data) {
    const { x0, y0, w, h } = patch;
    for (let y = 0; y < h; y++) {
      this.values.set(data.subarray(y * w, (y + 1) * w), (y0 + y) * this.width + x0);
    }
    this._render(x0, y0, x0 + w, y0 + h);
  }

  _render(x0, y0, x1, y1) {
    const { width, values } = this;
    const data = this.image.data;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const i = y * width + x;
        data.set(TRIMAP_RGBA[values[i]], 4 * i);
      }
    }
    this.ctx.putImageData(this.image, 0, 0, x0, y0, x1 - x0, y1 - y0);
  }
}

// -- PNG in and out (8-bit gray; the browser's own deflate and image decoder) ---------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function pngChunk(type, data) {
  const chunk = new Uint8Array(12 + data.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) chunk[4 + i] = type.charCodeAt(i);
  chunk.set(data, 8);
  let crc = 0xffffffff;
  for (let i = 4; i < 8 + data.length; i++) crc = CRC_TABLE[(crc ^ chunk[i]) & 0xff] ^ (crc >>> 8);
  view.setUint32(8 + data.length, (crc ^ 0xffffffff) >>> 0);
  return chunk;
}

async function encodeGrayPng(values, width, height) {
  const raw = new Uint8Array((width + 1) * height); // each row: filter type 0, then its bytes
  for (let y = 0; y < height; y++) raw.set(values.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const stream = new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"));
  const compressed = new Uint8Array(await new Response(stream).arrayBuffer());
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8); // 8-bit, grayscale, deflate, no filter choice, no interlace
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob(
    [signature, pngChunk("IHDR", header), pngChunk("IDAT", compressed), pngChunk("IEND", new Uint8Array(0))],
    { type: "image/png" }
  );
}

// A trimap PNG (as the server sends it) -> Uint8Array of 0 / 128 / 255 at width x height.
async function decodeTrimapPng(blob, width, height) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  if (bitmap.width !== width || bitmap.height !== height) {
    throw new Error(`the trimap is ${bitmap.width}\u00d7${bitmap.height} px, the photo ${width}\u00d7${height} px`);
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const values = new Uint8Array(width * height);
  for (let i = 0; i < values.length; i++) values[i] = snapTrimapValue(rgba[4 * i]);
  return values;
}
