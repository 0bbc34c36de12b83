/* Zones (docs/detection.md, "Zones and masks"): polygons and lines in fractions of the frame.
 *
 * - SurveillanceZones.overlay(media, zones): draws them, read-only, in an SVG over an <img> or a <video>
 *   (the camera page's live view, the event page's snapshot and clip); .set(zones) redraws.
 * - The editor: every [data-zone-editor] element on the page (the camera page, the admin's camera form).
 *   Polygons: "Add a polygon", click to add points, double-click (or click the first point, or Enter) to
 *   finish, Esc to cancel; lines: two clicks. Select a zone to edit its settings and drag its points.
 *   The zones are kept, as JSON, in the editor's <textarea> (the admin's field, the page form's value),
 *   which stays readable and can be edited by hand. The server validates (inference/zone_specs.py).
 * Plain JS and SVG, no library. */
(function () {
  "use strict";
  if (window.SurveillanceZones) return;

  const NS = "http://www.w3.org/2000/svg";
  const POLYGON_KINDS = ["ignore", "forbidden", "loiter"];
  const KINDS = [...POLYGON_KINDS, "line"];
  const DEFAULT_SIZE = [1600, 900];  // 16:9 until a picture says otherwise
  const CLOSE_PX = 10;                // a click this close to the first point closes the polygon
  const SAME_PX = 5;                  // a click this close to the previous point adds nothing (double-clicks)

  function svgEl(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(key, String(value));
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  const validPoint = (p) => Array.isArray(p) && p.length === 2 && p.every((v) => typeof v === "number" && isFinite(v));
  const kindOf = (zone) => (KINDS.includes(zone.kind) ? zone.kind : "ignore");

  /* The arrow(s) of a line's direction: "left" points to the line's left (seen from its first point looking
     at its second), "right" to its right, "both" both ways; the side an object crosses to. */
  function arrows(group, a, b, direction, size) {
    const dx = b[0] - a[0], dy = b[1] - a[1], len = Math.hypot(dx, dy) || 1;
    const left = [dy / len, -dx / len];  // y grows downwards: (dy, -dx) is the line's left
    const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const sides = direction === "left" ? [1] : direction === "right" ? [-1] : [1, -1];
    for (const s of sides) {
      const u = [left[0] * s, left[1] * s], v = [-u[1], u[0]];
      const tip = [mid[0] + u[0] * size, mid[1] + u[1] * size];
      const h = size * 0.35;
      const d = `M${mid[0]},${mid[1]} L${tip[0]},${tip[1]} M${tip[0] - u[0] * h + v[0] * h},${tip[1] - u[1] * h + v[1] * h}`
        + ` L${tip[0]},${tip[1]} L${tip[0] - u[0] * h - v[0] * h},${tip[1] - u[1] * h - v[1] * h}`;
      svgEl("path", { d, class: "zone-arrow" }, group);
    }
  }

  /* One zone's shapes in a <g>, in the coordinates of a w x h viewBox. */
  function drawZone(parent, zone, index, w, h) {
    if (!zone || !Array.isArray(zone.points)) return null;
    const points = zone.points.filter(validPoint).map(([x, y]) => [x * w, y * h]);
    if (!points.length) return null;
    const kind = kindOf(zone);
    const group = svgEl("g", { class: `zone zone-${kind}`, "data-zone": zone.name || "", "data-index": index }, parent);
    const size = Math.min(w, h);
    if (kind === "line") {
      const [a, b] = points;
      if (b) {
        svgEl("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "zone-shape" }, group);
        svgEl("circle", { cx: a[0], cy: a[1], r: size * 0.008, class: "zone-start" }, group);
        arrows(group, a, b, zone.direction || "both", size * 0.06);
      }
    } else {
      svgEl("polygon", { points: points.map((p) => p.join(",")).join(" "), class: "zone-shape" }, group);
    }
    if (zone.name) {
      const at = kind === "line" && points[1]
        ? [(points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2]
        : [points.reduce((s, p) => s + p[0], 0) / points.length, points.reduce((s, p) => s + p[1], 0) / points.length];
      const text = svgEl("text", { x: at[0], y: at[1], "text-anchor": "middle", "dominant-baseline": "middle",
                                   "font-size": size * 0.04, class: "zone-name" }, group);
      text.textContent = zone.name;
    }
    return group;
  }

  function drawAll(parent, zones, w, h) {
    (Array.isArray(zones) ? zones : []).forEach((zone, i) => drawZone(parent, zone, i, w, h));
  }

  function mediaSize(media) {
    const w = media.naturalWidth || media.videoWidth, h = media.naturalHeight || media.videoHeight;
    return w && h ? [w, h] : DEFAULT_SIZE;
  }

  /* Read-only zones over an <img> or <video>: an SVG laid over the element's box (its parent is the
     positioned container; a <video> gets one), scaled as the picture is (object-fit: contain). */
  class Overlay {
    constructor(media, zones) {
      this.media = media;
      let box = media.parentElement;
      if (media.tagName === "VIDEO" && !box.classList.contains("zone-media")) {
        box = document.createElement("div");
        box.className = "zone-media";
        media.replaceWith(box);
        box.appendChild(media);
      }
      this.svg = box.querySelector(":scope > svg.zone-overlay")
        || svgEl("svg", { class: "zone-overlay", "aria-hidden": "true", preserveAspectRatio: "xMidYMid meet" }, box);
      this.size = null;
      this.zones = zones || [];
      const resize = () => { if (String(mediaSize(media)) !== String(this.size)) this.draw(); };
      media.addEventListener("load", resize);
      media.addEventListener("loadedmetadata", resize);
      this.draw();
    }

    set(zones) {
      this.zones = Array.isArray(zones) ? zones : [];
      this.draw();
    }

    draw() {
      const [w, h] = (this.size = mediaSize(this.media));
      this.svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
      this.svg.replaceChildren();
      drawAll(this.svg, this.zones, w, h);
      this.svg.dataset.zones = String(this.zones.length);
    }
  }

  /* The zones as readable JSON: one zone a line. */
  function format(zones) {
    if (!zones.length) return "[]";
    return `[\n${zones.map((z) => `  ${JSON.stringify(z)}`).join(",\n")}\n]`;
  }

  const round = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;

  class Editor {
    constructor(root) {
      this.root = root;
      this.textarea = root.querySelector("textarea");
      this.stage = root.querySelector("[data-zone-stage]");
      this.img = this.stage.querySelector("img");
      this.svg = this.stage.querySelector("svg");
      this.list = root.querySelector("[data-zone-list]");
      this.form = root.querySelector("[data-zone-fields]");
      this.hint = root.querySelector("[data-zone-hint]");
      this.deleteButton = root.querySelector("[data-zone-delete]");
      this.kindLabels = JSON.parse(root.dataset.kindLabels || "{}");
      this.size = DEFAULT_SIZE;
      this.selected = -1;
      this.mode = null;    // "polygon" or "line" while a new zone is drawn
      this.draft = [];
      this.drag = null;
      this.zones = this.parse(this.textarea.value) || [];
      this.bind();
      this.loadPicture();
      this.render();
    }

    parse(text) {
      try {
        const value = JSON.parse(text || "[]");
        return Array.isArray(value) ? value : null;
      } catch (e) {
        return null;
      }
    }

    /* Zones from outside (the server's answer after saving). */
    load(zones) {
      this.zones = Array.isArray(zones) ? zones : [];
      this.selected = Math.min(this.selected, this.zones.length - 1);
      this.textarea.value = format(this.zones);
      this.render();
    }

    changed() {
      this.textarea.value = format(this.zones);
      this.root.dispatchEvent(new CustomEvent("zones:changed", { bubbles: true, detail: { zones: this.zones } }));
      this.render();
    }

    bind() {
      this.root.querySelectorAll("[data-zone-add]").forEach((b) => b.addEventListener("click", () => this.start(b.dataset.zoneAdd)));
      this.deleteButton.addEventListener("click", () => this.remove());
      const reload = this.root.querySelector("[data-zone-reload]");
      if (reload) reload.addEventListener("click", () => this.loadPicture());
      this.svg.addEventListener("click", (e) => this.click(e));
      this.svg.addEventListener("dblclick", (e) => { if (this.mode === "polygon") { e.preventDefault(); this.finish(); } });
      this.svg.addEventListener("pointermove", (e) => this.move(e));
      this.svg.addEventListener("pointerdown", (e) => this.grab(e));
      this.svg.addEventListener("pointerup", (e) => this.release(e));
      this.svg.addEventListener("pointercancel", (e) => this.release(e));
      this.root.addEventListener("keydown", (e) => {
        if (!this.mode) return;
        if (e.key === "Escape") { e.preventDefault(); this.cancel(); }
        if (e.key === "Enter") { e.preventDefault(); this.finish(); }
      });
      this.textarea.addEventListener("input", () => {  // edited by hand: follow it when it is a list
        const zones = this.parse(this.textarea.value);
        this.root.classList.toggle("zone-json-invalid", zones === null);
        if (zones === null) return;
        this.zones = zones;
        this.selected = Math.min(this.selected, zones.length - 1);
        this.render();
      });
      this.form.addEventListener("input", (e) => this.edit(e.target));
      this.form.addEventListener("change", (e) => this.edit(e.target));
      window.addEventListener("resize", () => this.render());
    }

    loadPicture() {
      const url = this.root.dataset.pictureUrl;
      this.stage.classList.remove("zone-has-picture");
      if (!url) { this.stage.classList.add("zone-no-picture"); return; }
      this.img.onload = () => {
        this.size = [this.img.naturalWidth || DEFAULT_SIZE[0], this.img.naturalHeight || DEFAULT_SIZE[1]];
        this.stage.classList.add("zone-has-picture");
        this.stage.classList.remove("zone-no-picture");
        this.render();
      };
      this.img.onerror = () => { this.stage.classList.add("zone-no-picture"); };
      this.img.src = `${url}${url.includes("?") ? "&" : "?"}t=${Date.now()}`;
    }

    /* Pointer position in the viewBox's coordinates, and in fractions of the frame. */
    at(e) {
      const ctm = this.svg.getScreenCTM();
      const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(ctm.inverse());
      return { x: p.x, y: p.y, fx: round(p.x / this.size[0]), fy: round(p.y / this.size[1]) };
    }

    /* Viewbox units per screen pixel. */
    unit() {
      const width = this.svg.getBoundingClientRect().width;
      return width ? this.size[0] / width : 1;
    }

    start(kind) {
      this.mode = kind === "line" ? "line" : "polygon";
      this.draft = [];
      this.selected = -1;
      this.stage.focus({ preventScroll: true });
      this.render();
    }

    cancel() {
      this.mode = null;
      this.draft = [];
      this.render();
    }

    click(e) {
      if (!this.mode) {
        if (performance.now() - (this.draggedAt || 0) < 400) return;  // the click that ends a drag keeps the selection
        const group = e.target.closest("g.zone");
        this.selected = group ? Number(group.dataset.index) : -1;
        this.render();
        return;
      }
      const p = this.at(e), px = this.unit();
      const points = this.draft;
      const dist = (q) => Math.hypot((q[0] - p.fx) * this.size[0], (q[1] - p.fy) * this.size[1]) / px;
      if (points.length && dist(points[points.length - 1]) < SAME_PX) return;  // the second click of a double-click
      if (this.mode === "polygon" && points.length >= 3 && dist(points[0]) < CLOSE_PX) { this.finish(); return; }
      points.push([p.fx, p.fy]);
      if (this.mode === "line" && points.length === 2) { this.finish(); return; }
      this.render();
    }

    finish() {
      if (!this.mode) return;
      const line = this.mode === "line";
      if (this.draft.length < (line ? 2 : 3)) {
        this.say(this.root.dataset[line ? "hintLine" : "hintPolygon"]);
        return;
      }
      const zone = line
        ? { name: this.newName(this.root.dataset.nameLine || "line"), kind: "line", points: this.draft, direction: "both" }
        : { name: this.newName(this.root.dataset.namePolygon || "zone"), kind: "forbidden", points: this.draft };
      this.zones.push(zone);
      this.selected = this.zones.length - 1;
      this.mode = null;
      this.draft = [];
      this.changed();
      const name = this.form.querySelector('[data-field="name"]');
      if (name) name.focus();
    }

    newName(base) {
      const taken = new Set(this.zones.map((z) => String(z.name || "").toLowerCase()));
      for (let n = 1; ; n++) if (!taken.has(`${base} ${n}`.toLowerCase())) return `${base} ${n}`;
    }

    remove() {
      if (this.selected < 0) return;
      this.zones.splice(this.selected, 1);
      this.selected = -1;
      this.changed();
    }

    grab(e) {
      const handle = e.target.closest("[data-point]");
      if (!handle || this.mode) return;
      e.preventDefault();
      this.drag = { point: Number(handle.dataset.point), moved: false };
      this.svg.setPointerCapture(e.pointerId);
    }

    move(e) {
      if (this.drag) {
        const zone = this.zones[this.selected];
        const p = this.at(e);
        zone.points[this.drag.point] = [p.fx, p.fy];
        this.drag.moved = true;
        this.render();
      } else if (this.mode && this.draft.length) {
        const p = this.at(e);
        this.cursor = [p.fx, p.fy];
        this.renderDraft();
      }
    }

    release(e) {
      if (!this.drag) return;
      if (this.svg.hasPointerCapture(e.pointerId)) this.svg.releasePointerCapture(e.pointerId);
      const moved = this.drag.moved;
      this.drag = null;
      if (moved) { this.draggedAt = performance.now(); this.changed(); }
    }

    /* A field of the selected zone's form changed. */
    edit(input) {
      const zone = this.zones[this.selected];
      const field = input.dataset.field;
      if (!zone || !field) return;
      const value = input.value.trim();
      if (field === "name") zone.name = input.value;
      if (field === "kind") {
        zone.kind = value;
        if (value !== "loiter") delete zone.loiter_seconds;
        if (!["forbidden", "loiter"].includes(value)) delete zone.min_area;
        if (value === "ignore") delete zone.classes;
        if (value !== "line") delete zone.direction;
      }
      if (field === "loiter_seconds") {
        if (value === "") delete zone.loiter_seconds;
        else zone.loiter_seconds = Number(value);
      }
      if (field === "direction") zone.direction = value;
      if (field === "classes") {
        const classes = value.split(",").map((c) => c.trim()).filter(Boolean);
        if (classes.length) zone.classes = classes; else delete zone.classes;
      }
      this.textarea.value = format(this.zones);
      this.root.dispatchEvent(new CustomEvent("zones:changed", { bubbles: true, detail: { zones: this.zones } }));
      this.renderShapes();
      this.renderList();
      if (field === "kind") this.renderForm();
    }

    say(text) {
      if (this.hint) this.hint.textContent = text || "";
    }

    /* A zone named by the server's error ("zones[2] 'gate': ..."): selected, so its settings show. */
    select(index) {
      if (index >= 0 && index < this.zones.length) { this.selected = index; this.render(); }
    }

    render() {
      const [w, h] = this.size;
      this.stage.style.aspectRatio = `${w} / ${h}`;
      this.svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
      this.root.classList.toggle("zone-drawing", Boolean(this.mode));
      this.deleteButton.disabled = this.selected < 0;
      this.say(this.mode === "line" ? this.root.dataset.hintLine : this.mode === "polygon" ? this.root.dataset.hintPolygon
        : this.zones.length ? this.root.dataset.hintSelect : this.root.dataset.hintEmpty);
      this.renderShapes();
      this.renderList();
      this.renderForm();
    }

    renderShapes() {
      const [w, h] = this.size;
      this.svg.replaceChildren();
      this.zones.forEach((zone, i) => {
        const group = drawZone(this.svg, zone, i, w, h);
        if (group && i === this.selected) group.classList.add("selected");
      });
      const zone = this.zones[this.selected];
      if (zone && Array.isArray(zone.points) && !this.mode) {
        const r = 7 * this.unit();
        const handles = svgEl("g", { class: "zone-handles" }, this.svg);
        zone.points.forEach((p, j) => {
          if (validPoint(p)) svgEl("circle", { cx: p[0] * w, cy: p[1] * h, r, "data-point": j, class: "zone-handle" }, handles);
        });
      }
      this.draftLayer = svgEl("g", { class: "zone-draft" }, this.svg);
      this.renderDraft();
    }

    renderDraft() {
      if (!this.draftLayer) return;
      this.draftLayer.replaceChildren();
      if (!this.mode || !this.draft.length) return;
      const [w, h] = this.size, r = 5 * this.unit();
      const points = [...this.draft, ...(this.cursor ? [this.cursor] : [])].map(([x, y]) => `${x * w},${y * h}`);
      svgEl("polyline", { points: points.join(" "), class: `zone-draft-line zone-${this.mode === "line" ? "line" : "forbidden"}` },
            this.draftLayer);
      this.draft.forEach(([x, y], j) => svgEl("circle", { cx: x * w, cy: y * h, r: j === 0 ? r * 1.6 : r,
                                                          class: j === 0 ? "zone-draft-first" : "zone-draft-point" }, this.draftLayer));
    }

    renderList() {
      this.list.replaceChildren();
      this.zones.forEach((zone, i) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = `quiet zone-item zone-${kindOf(zone)}`;
        button.setAttribute("aria-pressed", String(i === this.selected));
        button.textContent = `${zone.name || "?"} · ${this.kindLabels[zone.kind] || zone.kind}`;
        button.addEventListener("click", () => { this.mode = null; this.selected = i; this.render(); });
        item.appendChild(button);
        this.list.appendChild(item);
      });
    }

    renderForm() {
      const zone = this.zones[this.selected];
      this.form.hidden = !zone;
      if (!zone) return;
      const kind = kindOf(zone);
      for (const input of this.form.querySelectorAll("[data-field]")) {
        const field = input.dataset.field;
        let value = zone[field];
        if (field === "classes") value = Array.isArray(value) ? value.join(", ") : "";
        if (field === "direction") value = value || "both";
        if (field === "kind") {
          for (const option of input.options) option.disabled = (option.value === "line") !== (kind === "line");
        }
        if (document.activeElement !== input || field === "kind") input.value = value === undefined || value === null ? "" : value;
      }
      for (const label of this.form.querySelectorAll("[data-for-kind]")) {
        label.hidden = !label.dataset.forKind.split(" ").includes(kind);
      }
    }
  }

  /* The camera page: Save posts the form (through the camera update service) and shows the answer. */
  function bindSave(root, editor) {
    const form = root.closest("form[data-zone-save]");
    if (!form) return;
    const status = form.querySelector("[data-zone-status]");
    const error = form.querySelector("[data-zone-error]");
    root.addEventListener("zones:changed", () => { status.textContent = form.dataset.unsaved; });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      status.textContent = form.dataset.saving;
      let response, body = {};
      try {
        response = await fetch(form.action, {
          method: "POST", body: new FormData(form), credentials: "same-origin",
          headers: { Accept: "application/json", "X-Requested-With": "fetch" },
        });
        body = await response.json().catch(() => ({}));
      } catch (exc) {
        status.textContent = "";
        error.textContent = form.dataset.failed;
        return;
      }
      if (response.ok) {
        editor.load(body.zones);
        status.textContent = body.message || form.dataset.saved;
        document.dispatchEvent(new CustomEvent("zones:saved", { detail: { camera: Number(form.dataset.camera), zones: body.zones } }));
        return;
      }
      status.textContent = "";
      error.textContent = body.error || `${form.dataset.failed} (HTTP ${response.status})`;
      const named = /(?:zones|구역)\[(\d+)\]/.exec(body.error || ""); // the zone the checker named (English or Korean)
      if (named) editor.select(Number(named[1]));
    });
  }

  function overlay(media, zones) {
    return new Overlay(media, zones);
  }

  const editors = [];
  function init() {
    document.querySelectorAll("[data-zone-editor]").forEach((root) => {
      if (root.zoneEditor) return;
      const editor = (root.zoneEditor = new Editor(root));
      editors.push(editor);
      bindSave(root, editor);
    });
  }

  window.SurveillanceZones = { overlay, Overlay, Editor, format, editors, KINDS };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
