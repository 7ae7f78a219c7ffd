// dualtalk serve: the page. Two heads animated live from WS /v1/stream (protocol "1", docs/serve.md).
//
// The user picks an audio file per person (or the microphone for one of them). The page streams both voices
// to the server in 40 ms chunks at real-time pace, plays them (WebAudio) and shows motion frame k when the
// playback reaches k / fps seconds (a frame that arrives later is shown as soon as it arrives). Playback
// starts `delay` = the model's algorithmic latency + 100 ms after the audio starts to be sent, so that the
// frames are normally there in time. The heads are posed on the CPU exactly as the Python renderer poses
// them (dualtalk.render.heads: the definition comes from GET /v1/head) and drawn with three.js.
//
// window.dualtalk exposes the page's state (the tests read it): frames and jaw per person, the speaking
// flags, the latency, the mesh, posed vertices on demand.
import * as THREE from "three";

const $ = (id) => document.getElementById(id);
const PEOPLE = ["A", "B"];
const SIDE = { A: 0, B: 1 }; // binary tag of each person's audio: 0 = "self", 1 = "partner"
const SPEAKING_RMS = 0.01; // -40 dBFS over the last 0.2 s: the speaking badge's energy gate
const token = new URLSearchParams(location.search).get("token");

const dt = (window.dualtalk = {
  state: "loading", // loading | ready | starting | streaming | finishing | done | error
  error: null, // the one-line error shown on the page
  model: null, // GET /v1/models entry
  hello: null, // the session's hello message
  done: null, // frames per person of the session's done message
  mode: null, // "joint" (both heads generated) or "listen" (A generated, B only heard)
  sampleRate: null, // of both voices as sent
  sent: 0, // samples sent per voice
  head: null, // {kind, vertices, faces} of the meshes on the page
  frames: { A: [], B: [] }, // frames received, model order [exp 50, jaw 3, global 3]
  jaw: { A: [], B: [] }, // their jaw rotation (3)
  speaking: { A: [], B: [] }, // per frame of audio sent: RMS over 0.2 s above -40 dBFS
  shown: { A: -1, B: -1 }, // index of the frame on screen
  latency: { p50: null, p95: null, n: 0 }, // ms from the audio that makes a frame final to its arrival
  latencies: [],
  rendered: 0, // frames drawn by WebGL
  cost: { pose: 0, draw: 0 }, // ms spent posing + shading the meshes, and in WebGL calls (main thread)
  posed: (person, k) => Array.from(rig.pose(dt.frames[person][k], new Float32Array(rig.rest.length))),
  pose: (frame) => Array.from(rig.pose(frame, new Float32Array(rig.rest.length))),
  drawn: (person) => Array.from(heads[person].geometry.attributes.position.array),
});

// ---------------------------------------------------------------------------------------------------
// errors: every problem is one line on the page

function fail(message) {
  const line = String(message).replace(/\s+/g, " ").trim();
  if (dt.state === "error" && dt.error) return; // the first error is the cause; keep it
  dt.state = "error";
  dt.error = line;
  const el = $("error");
  el.textContent = line;
  el.title = line;
  el.hidden = false;
  if (session) session.stop();
  updateButtons();
}

function clearError() {
  dt.error = null;
  $("error").hidden = true;
  $("error").textContent = "";
}

window.addEventListener("error", (e) => fail(`page error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => fail(`page error: ${e.reason?.message ?? e.reason}`));

async function getJSON(path) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let r;
  try {
    r = await fetch(path, { headers });
  } catch (e) {
    throw new Error(`GET ${path}: the server cannot be reached (${e.message})`);
  }
  if (!r.ok) {
    let detail = r.statusText;
    try {
      const body = await r.json();
      detail = `${body.error.code}: ${body.error.message}`;
    } catch {}
    const hint = r.status === 401 ? " (open the page as /?token=YOUR_TOKEN)" : "";
    throw new Error(`GET ${path}: ${r.status} ${detail}${hint}`);
  }
  return r.json();
}

// ---------------------------------------------------------------------------------------------------
// heads: the definitions of dualtalk.render.heads, posed as BuiltinHead.vertices / FlameModel.vertices

function unpack(a) {
  const text = atob(a.base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const Type = { float32: Float32Array, int32: Int32Array, uint32: Uint32Array }[a.dtype];
  return new Type(bytes.buffer); // little-endian, as every browser's typed arrays
}

// axis-angle -> row-major 3x3 rotation, as dualtalk.flame.rodrigues: I + sin(t) K + (1 - cos(t)) K^2
function rodrigues(x, y, z) {
  const t = Math.hypot(x, y, z);
  const d = Math.max(t, 1e-12);
  const [a, b, c] = [x / d, y / d, z / d];
  const s = Math.sin(t);
  const v = 1 - Math.cos(t);
  const n = a * a + b * b + c * c; // 1, or 0 for no rotation
  return [
    1 + v * (a * a - n), -s * c + v * a * b, s * b + v * a * c,
    s * c + v * a * b, 1 + v * (b * b - n), -s * a + v * b * c,
    -s * b + v * a * c, s * a + v * b * c, 1 + v * (c * c - n),
  ];
}

function rotateAbout(v, idx, R, p) {
  for (let n = 0; n < idx.length; n++) {
    const i = 3 * idx[n];
    const x = v[i] - p[0];
    const y = v[i + 1] - p[1];
    const z = v[i + 2] - p[2];
    v[i] = R[0] * x + R[1] * y + R[2] * z + p[0];
    v[i + 1] = R[3] * x + R[4] * y + R[5] * z + p[1];
    v[i + 2] = R[6] * x + R[7] * y + R[8] * z + p[2];
  }
}

// The built-in head (rigid parts): the jaw turns about the hinge by the jaw rotation, then head and jaw
// about the neck pivot by the global rotation; neck and shoulders stay.
class BuiltinRig {
  constructor(def) {
    this.kind = "builtin";
    this.rest = unpack(def.rest);
    this.faces = unpack(def.faces);
    this.colors = unpack(def.base_colors);
    this.jawIdx = unpack(def.jaw_idx);
    this.headIdx = unpack(def.head_idx);
    this.hinge = def.jaw_hinge;
    this.pivot = def.neck_pivot;
  }

  pose(f, out) {
    out.set(this.rest);
    rotateAbout(out, this.jawIdx, rodrigues(f[50], f[51], f[52]), this.hinge);
    rotateAbout(out, this.headIdx, rodrigues(f[53], f[54], f[55]), this.pivot);
    return out;
  }
}

// FLAME: expression blendshapes, joints regressed from the expressed mesh, pose correctives, then linear
// blend skinning along the kinematic chain; the motion's global rotation on the neck joint (as
// FlameModel.vertices by default), the jaw on the jaw joint, root and eyes at rest.
class FlameRig {
  constructor(def) {
    this.kind = "flame";
    this.rest = unpack(def.v_template);
    this.faces = unpack(def.faces);
    this.colors = unpack(def.base_colors);
    this.expdirs = unpack(def.expdirs); // (E, V, 3)
    this.posedirs = unpack(def.posedirs); // (36, V, 3)
    this.jointsTemplate = unpack(def.joints_template); // (5, 3)
    this.jointsExpdirs = unpack(def.joints_expdirs); // (E, 5, 3)
    this.weights = unpack(def.weights); // (V, 5)
    this.parents = def.parents;
    this.numExp = def.num_exp;
    this.neck = def.joints.neck;
    this.jaw = def.joints.jaw;
    this.shaped = new Float32Array(this.rest.length);
  }

  pose(f, out) {
    const n = this.rest.length;
    const J = this.parents.length;
    const vs = this.shaped;
    vs.set(this.rest);
    const joints = Float64Array.from(this.jointsTemplate);
    for (let e = 0; e < this.numExp; e++) {
      const w = f[e];
      if (w === 0) continue;
      const base = e * n;
      for (let i = 0; i < n; i++) vs[i] += w * this.expdirs[base + i];
      for (let i = 0; i < 3 * J; i++) joints[i] += w * this.jointsExpdirs[e * 3 * J + i];
    }
    const I = [1, 0, 0, 0, 1, 0, 0, 0, 1];
    const rot = this.parents.map(() => I);
    rot[this.neck] = rodrigues(f[53], f[54], f[55]);
    rot[this.jaw] = rodrigues(f[50], f[51], f[52]);
    for (let j = 1; j < J; j++) {
      for (let c = 0; c < 9; c++) {
        const w = rot[j][c] - I[c]; // the 36 pose features: (R_j - I) of the non-root joints
        if (w === 0) continue;
        const base = (9 * (j - 1) + c) * n;
        for (let i = 0; i < n; i++) vs[i] += w * this.posedirs[base + i];
      }
    }
    // world transform of each joint G_j = G_parent [R_j | J_j - J_parent], then A_j v = G_j (v - J_j)
    const G = [];
    for (let j = 0; j < J; j++) {
      const p = this.parents[j];
      const R = rot[j];
      if (p < 0) {
        G.push({ R, t: [joints[0], joints[1], joints[2]] });
        continue;
      }
      const P = G[p];
      const Rw = new Array(9);
      for (let r = 0; r < 3; r++)
        for (let c = 0; c < 3; c++)
          Rw[3 * r + c] = P.R[3 * r] * R[c] + P.R[3 * r + 1] * R[3 + c] + P.R[3 * r + 2] * R[6 + c];
      const d = [0, 1, 2].map((c) => joints[3 * j + c] - joints[3 * p + c]);
      const t = [0, 1, 2].map((r) => P.R[3 * r] * d[0] + P.R[3 * r + 1] * d[1] + P.R[3 * r + 2] * d[2] + P.t[r]);
      G.push({ R: Rw, t });
    }
    const A = new Float64Array(12 * J); // rows of the 3x4 affine per joint
    for (let j = 0; j < J; j++) {
      const { R, t } = G[j];
      for (let r = 0; r < 3; r++) {
        A[12 * j + 4 * r] = R[3 * r];
        A[12 * j + 4 * r + 1] = R[3 * r + 1];
        A[12 * j + 4 * r + 2] = R[3 * r + 2];
        A[12 * j + 4 * r + 3] = t[r] - (R[3 * r] * joints[3 * j] + R[3 * r + 1] * joints[3 * j + 1] + R[3 * r + 2] * joints[3 * j + 2]);
      }
    }
    const M = new Float64Array(12);
    for (let v = 0; v < n / 3; v++) {
      M.fill(0);
      for (let j = 0; j < J; j++) {
        const w = this.weights[J * v + j];
        if (w === 0) continue;
        for (let k = 0; k < 12; k++) M[k] += w * A[12 * j + k];
      }
      const x = vs[3 * v];
      const y = vs[3 * v + 1];
      const z = vs[3 * v + 2];
      out[3 * v] = M[0] * x + M[1] * y + M[2] * z + M[3];
      out[3 * v + 1] = M[4] * x + M[5] * y + M[6] * z + M[7];
      out[3 * v + 2] = M[8] * x + M[9] * y + M[10] * z + M[11];
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------
// drawing: per-vertex lighting as dualtalk.render.scene.shade, one viewport per person

const unit = (v) => v.map((x) => x / Math.hypot(...v));
const KEY = unit([0.45, 0.55, 1.0]);
const FILL = unit([-0.7, 0.0, 0.7]);
const HALF = unit([KEY[0], KEY[1], KEY[2] + 1.0]);

let rig = null;
let renderer = null;
const heads = {}; // person -> THREE.Mesh
const scenes = {};
const cameras = {};
let dirty = true;

function shade(mesh) {
  const n = mesh.geometry.attributes.normal.array;
  const out = mesh.geometry.attributes.color.array;
  const base = rig.colors;
  for (let i = 0; i < n.length; i += 3) {
    const key = Math.max(0, n[i] * KEY[0] + n[i + 1] * KEY[1] + n[i + 2] * KEY[2]);
    const fill = Math.max(0, n[i] * FILL[0] + n[i + 1] * FILL[1] + n[i + 2] * FILL[2]);
    const spec = Math.max(0, n[i] * HALF[0] + n[i + 1] * HALF[1] + n[i + 2] * HALF[2]) ** 24;
    const light = 0.3 + 0.62 * key + 0.22 * fill;
    for (let c = 0; c < 3; c++) out[i + c] = Math.min(1, Math.max(0, base[i + c] * light + 0.1 * spec));
  }
  mesh.geometry.attributes.color.needsUpdate = true;
}

function showFrame(person, frame) {
  const began = performance.now();
  const mesh = heads[person];
  const pos = mesh.geometry.attributes.position;
  if (frame) rig.pose(frame, pos.array);
  else pos.array.set(rig.rest);
  pos.needsUpdate = true;
  mesh.geometry.computeVertexNormals();
  shade(mesh);
  if (frame && rig.kind === "builtin") drawStrip(person, frame);
  dirty = true;
  dt.cost.pose += performance.now() - began;
}

function buildHeads(def) {
  rig = def.kind === "flame" ? new FlameRig(def) : new BuiltinRig(def);
  THREE.ColorManagement.enabled = false; // colours are display values, as in the video renderer
  try {
    renderer = new THREE.WebGLRenderer({ canvas: $("view"), antialias: true });
  } catch (e) {
    throw new Error(`WebGL is not available in this browser (${e.message})`);
  }
  renderer.outputColorSpace = THREE.LinearSRGBColorSpace;
  renderer.setScissorTest(true);
  const [cx, cy, cz] = def.center;
  const dist = 6 * def.radius; // as dualtalk.render.scene.Camera: 6 radii away, the radius fills half the height
  for (const person of PEOPLE) {
    const g = new THREE.BufferGeometry();
    g.setAttribute("position", new THREE.BufferAttribute(new Float32Array(rig.rest), 3));
    g.setAttribute("color", new THREE.BufferAttribute(new Float32Array(rig.rest.length), 3));
    g.setIndex(new THREE.BufferAttribute(rig.faces, 1));
    const mesh = new THREE.Mesh(g, new THREE.MeshBasicMaterial({ vertexColors: true })); // back faces culled, as the video
    mesh.frustumCulled = false; // the vertices move every frame
    scenes[person] = new THREE.Scene();
    scenes[person].add(mesh);
    heads[person] = mesh;
    const cam = new THREE.PerspectiveCamera((2 * Math.atan(1 / 6) * 180) / Math.PI, 1, dist / 10, dist * 10);
    cam.position.set(cx, cy, cz + dist);
    cam.lookAt(cx, cy, cz);
    cameras[person] = cam;
    showFrame(person, null);
    $(`strip-box-${person}`).hidden = rig.kind !== "builtin";
  }
  const g = heads.A.geometry;
  dt.head = { kind: rig.kind, vertices: g.attributes.position.count, faces: g.index.count / 3 };
  new ResizeObserver(() => (dirty = true)).observe($("view"));
}

function render() {
  const began = performance.now();
  const canvas = $("view");
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * devicePixelRatio) || canvas.height !== Math.round(h * devicePixelRatio)) {
    renderer.setPixelRatio(devicePixelRatio);
    renderer.setSize(w, h, false);
  }
  renderer.setClearColor(0xe9e7e4);
  PEOPLE.forEach((person, i) => {
    const half = w / 2;
    renderer.setViewport(i * half, 0, half, h);
    renderer.setScissor(i * half, 0, half, h);
    cameras[person].aspect = half / h;
    cameras[person].updateProjectionMatrix();
    renderer.render(scenes[person], cameras[person]);
  });
  dt.rendered += 1;
  dirty = false;
  dt.cost.draw += performance.now() - began;
}

// the 50 expression coefficients of the built-in head (it has no blendshapes), as the video's heat strip
function drawStrip(person, frame) {
  const c = $(`strip-${person}`).getContext("2d");
  const cell = c.canvas.width / 50;
  for (let e = 0; e < 50; e++) {
    const t = Math.max(-1, Math.min(1, frame[e] / 2.5)); // blue -, red + (coolwarm's ends)
    const [lo, mid, hi] = [[59, 76, 192], [221, 221, 221], [180, 4, 38]];
    const [a, b, u] = t < 0 ? [mid, lo, -t] : [mid, hi, t];
    c.fillStyle = `rgb(${a.map((x, k) => Math.round(x + (b[k] - x) * u)).join(",")})`;
    c.fillRect(e * cell, 0, cell - 1, c.canvas.height);
  }
}

// ---------------------------------------------------------------------------------------------------
// audio input

async function decodeFile(person, file, sampleRate) {
  let buffer;
  try {
    // decoded (and resampled if needed) at the session's rate; a 16 kHz file at 16 kHz is bit-exact
    const ctx = new OfflineAudioContext({ numberOfChannels: 1, length: 1, sampleRate });
    buffer = await ctx.decodeAudioData(await file.arrayBuffer());
  } catch (e) {
    throw new Error(`person ${person}: cannot decode ${JSON.stringify(file.name)} as audio (${e.name || e})`);
  }
  if (!buffer.length) throw new Error(`person ${person}: ${JSON.stringify(file.name)} has no samples`);
  const mono = new Float32Array(buffer.length); // channels averaged, as dualtalk.io.audio.load_audio
  for (let ch = 0; ch < buffer.numberOfChannels; ch++) {
    const x = buffer.getChannelData(ch);
    for (let i = 0; i < mono.length; i++) mono[i] += x[i] / buffer.numberOfChannels;
  }
  return mono;
}

async function openMicrophone(ctx) {
  if (!navigator.mediaDevices?.getUserMedia)
    throw new Error("microphone: not available on this page (browsers allow it on https:// or localhost only)");
  let stream;
  try {
    const audio = { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false };
    stream = await navigator.mediaDevices.getUserMedia({ audio });
  } catch (e) {
    const why = e.name === "NotAllowedError" ? "permission refused" : e.name === "NotFoundError" ? "none found" : "failed";
    throw new Error(`microphone: ${why} (${e.name}: ${e.message})`);
  }
  await ctx.audioWorklet.addModule("/web/capture.js");
  const node = new AudioWorkletNode(ctx, "dualtalk-capture");
  const mute = ctx.createGain(); // the worklet must reach the destination to run; the mic is not played
  mute.gain.value = 0;
  ctx.createMediaStreamSource(stream).connect(node).connect(mute).connect(ctx.destination);
  return { stream, node };
}

function readChoices() {
  const out = {};
  for (const person of PEOPLE) {
    const kind = document.querySelector(`input[name=kind-${person}]:checked`).value;
    const file = $(`file-${person}`).files[0];
    if (kind === "file" && !file) throw new Error(`person ${person}: choose an audio file (or the microphone)`);
    out[person] = { kind, file };
  }
  if (out.A.kind === "mic" && out.B.kind === "mic")
    throw new Error("only one person can use the microphone: choose a file for the other");
  return out;
}

// ---------------------------------------------------------------------------------------------------
// a session over WS /v1/stream

let session = null;

class Session {
  constructor(info, choices) {
    this.info = info;
    this.choices = choices;
    this.mode = info.joint ? "joint" : "listen"; // joint: both heads generated; listen: person A only
    this.ws = null;
    this.ctx = null;
    this.audio = {}; // person -> Float32Array (files)
    this.mic = null; // {person, stream, node, chunks: [], available}
    this.sent = 0; // samples sent per voice (the two stay aligned)
    this.sendLog = []; // [samples sent per voice, time sent] after each send
    this.logPos = { A: 0, B: 0 }; // per person: where the search of sendLog for its next frame starts
    this.endedAt = null; // when "end" was sent
    this.frameSums = { A: [], B: [] }; // per frame of audio sent: sum of squares
    this.sources = [];
    this.t0 = null; // audio context time of sample 0
    this.serverError = null;
    this.done = null;
    this.stopped = false;
  }

  async start() {
    const { info, choices } = this;
    if (info.needs_partner_motion)
      throw new Error(`the served model ${info.name} needs the partner's motion, which this page cannot send`);
    this.ctx = new AudioContext();
    await this.ctx.resume();
    const micPerson = PEOPLE.find((p) => choices[p].kind === "mic");
    // one rate for both voices (the protocol's sample_rate): the model's for files, the microphone's with it
    this.sr = micPerson ? this.ctx.sampleRate : info.sample_rate;
    for (const person of PEOPLE)
      if (choices[person].kind === "file") this.audio[person] = await decodeFile(person, choices[person].file, this.sr);
    const lengths = Object.values(this.audio).map((x) => x.length);
    this.length = Math.max(...lengths); // a shorter file is followed by silence
    if (micPerson) {
      this.mic = { person: micPerson, chunks: [], available: 0, ...(await openMicrophone(this.ctx)) };
      this.mic.node.port.onmessage = (e) => {
        if (this.t0 === null || this.stopped) return; // samples before the session is ready are dropped
        this.mic.chunks.push(e.data);
        this.mic.available += e.data.length;
      };
    }
    if (this.stopped) return this.cancel(); // Stop pressed while the files were decoded
    dt.sampleRate = this.sr;
    dt.mode = this.mode;
    this.connect();
  }

  connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`;
    // browsers cannot set headers on a WebSocket: the token goes in the query
    this.ws = new WebSocket(token ? `${url}?token=${encodeURIComponent(token)}` : url);
    this.ws.binaryType = "arraybuffer";
    this.ws.onmessage = (e) => this.onMessage(e);
    this.ws.onclose = (e) => this.onClose(e);
  }

  onMessage(e) {
    if (typeof e.data !== "string") return fail("the server sent an unexpected binary message");
    const msg = JSON.parse(e.data);
    switch (msg.type) {
      case "hello": // the server's model and limits: answer with start (both voices at this.sr, float32)
        if (msg.version !== "1") return fail(`the server speaks protocol ${msg.version}, this page 1`);
        dt.hello = msg;
        this.fps = msg.fps;
        this.lookahead = Math.round((msg.latency_ms * msg.fps) / 1000) - 1;
        this.delay = msg.latency_ms / 1000 + 0.1;
        this.chunk = Math.round(this.sr * 0.04); // 40 ms
        this.ws.send(JSON.stringify({ type: "start", version: "1", sample_rate: this.sr, encoding: "f32le", mode: this.mode }));
        return;
      case "ready": // the session exists: audio may flow; the files play `delay` later
        if (this.stopped) return this.cancel();
        this.t0 = this.ctx.currentTime + 0.05;
        for (const person of PEOPLE) if (this.audio[person]) this.play(this.audio[person]);
        dt.state = "streaming";
        this.timer = setInterval(() => this.pump(), 20);
        return;
      case "frames": // final frames of one person, in order: "self" is A (side 0), "partner" B (side 1)
        return this.onFrames(msg.person === "self" ? "A" : "B", msg);
      case "error": // the close (with its code) follows
        this.serverError = msg;
        return;
      case "done": // every frame was sent; the server closes with 1000
        this.done = msg;
        dt.done = msg.frames;
        return;
      default:
        return fail(`the server sent an unknown message type ${JSON.stringify(msg.type)}`);
    }
  }

  onClose(e) {
    clearInterval(this.timer);
    if (this.done && e.code === 1000) {
      dt.state = "done";
      this.release();
      updateButtons();
      updateText(); // the final latency figures
      return;
    }
    if (dt.state === "error") return; // closed by fail()
    const err = this.serverError;
    const reason = e.reason ? ` ${e.reason}` : "";
    if (err) fail(`server: ${err.code}: ${err.message} (close ${e.code}${reason})`);
    else if (!dt.hello) fail(`cannot open ${this.ws.url.split("?")[0]} (close ${e.code}${reason})`);
    else fail(`the server closed the session (close ${e.code}${reason})`);
  }

  play(samples) {
    const buf = this.ctx.createBuffer(1, samples.length, this.sr);
    buf.copyToChannel(samples, 0);
    const src = this.ctx.createBufferSource();
    src.buffer = buf;
    src.connect(this.ctx.destination);
    src.start(this.t0 + this.delay);
    this.sources.push(src);
  }

  // Sends the audio due by now in 40 ms chunks, one binary message per voice: tag byte + float32 samples.
  // Files go at the audio clock's pace; with a microphone, at the microphone's pace (the file follows it).
  pump() {
    if (this.endedAt !== null || this.t0 === null) return;
    let due = Math.floor((this.ctx.currentTime - this.t0) * this.sr);
    if (this.mic) due = this.sent + this.mic.available;
    due = Math.min(due, this.length);
    while (due - this.sent >= this.chunk || (due === this.length && this.sent < this.length)) {
      const end = Math.min(this.sent + this.chunk, due);
      for (const person of PEOPLE) {
        const x = this.mic?.person === person ? this.takeMic(end - this.sent) : this.slice(person, this.sent, end);
        this.measure(person, this.sent, x);
        const message = new Uint8Array(1 + 4 * x.length);
        message[0] = SIDE[person];
        message.set(new Uint8Array(x.buffer, x.byteOffset, 4 * x.length), 1);
        this.ws.send(message);
      }
      this.sent = dt.sent = end;
      this.sendLog.push([end, performance.now()]);
    }
    if (this.sent >= this.length || this.stopped) this.end();
  }

  slice(person, i, j) {
    const x = this.audio[person];
    const out = new Float32Array(j - i);
    if (i < x.length) out.set(x.subarray(i, Math.min(j, x.length)));
    return out;
  }

  takeMic(n) {
    const out = new Float32Array(n);
    let k = 0;
    while (k < n) {
      const head = this.mic.chunks[0];
      const take = Math.min(head.length, n - k);
      out.set(head.subarray(0, take), k);
      k += take;
      if (take === head.length) this.mic.chunks.shift();
      else this.mic.chunks[0] = head.subarray(take);
    }
    this.mic.available -= n;
    return out;
  }

  // the speaking badge: the energy of each voice per frame as sent; a frame is "speaking" when the RMS
  // over it and the 4 frames before (0.2 s) is above -40 dBFS
  measure(person, start, x) {
    const sums = this.frameSums[person];
    const spf = this.sr / this.fps;
    for (let i = 0; i < x.length; i++) {
      const k = Math.floor((start + i) / spf);
      sums[k] = (sums[k] || 0) + x[i] * x[i];
    }
    const complete = Math.floor((start + x.length) / spf);
    const flags = dt.speaking[person];
    for (let k = flags.length; k < complete; k++) {
      let s = 0;
      for (let j = Math.max(0, k - 4); j <= k; j++) s += sums[j] || 0;
      flags.push(Math.sqrt(s / (spf * Math.min(5, k + 1))) > SPEAKING_RMS);
    }
  }

  end() {
    if (this.endedAt !== null) return;
    this.ws.send(JSON.stringify({ type: "end" })); // the server flushes the rest, sends done and closes
    this.endedAt = performance.now();
    dt.state = "finishing";
    updateButtons();
  }

  onFrames(person, msg) {
    const frames = dt.frames[person];
    if (msg.start !== frames.length) return fail(`frames of ${person} out of order (${msg.start}, expected ${frames.length})`);
    const now = performance.now();
    msg.frames.forEach((f, i) => {
      frames.push(f);
      dt.jaw[person].push(f.slice(50, 53));
      // frame k is final once both voices reached (k + 1 + lookahead) frames of audio: the time that audio was
      // sent (or "end" was, for the frames after the audio) to now is its latency
      const need = Math.ceil(((msg.start + i + 1 + this.lookahead) * this.sr) / this.fps);
      const log = this.sendLog;
      while (this.logPos[person] < log.length && log[this.logPos[person]][0] < need) this.logPos[person]++;
      const sentAt = this.logPos[person] < log.length ? log[this.logPos[person]][1] : this.endedAt;
      if (sentAt !== null) dt.latencies.push(now - sentAt);
    });
  }

  // the frame due at the playback clock (-1 before the playback starts): what is being heard, i.e. the
  // audio clock minus the output's latency
  clockFrame() {
    if (this.t0 === null) return -1;
    const heard = this.ctx.currentTime - (this.ctx.outputLatency || this.ctx.baseLatency || 0);
    return Math.floor((heard - this.t0 - this.delay) * this.fps);
  }

  // Stop: while streaming, the audio sent so far is ended properly (the server sends the rest and done);
  // before that, the session is abandoned; after an error, everything is released
  stop() {
    this.stopped = true;
    for (const src of this.sources) src.stop();
    this.sources = [];
    if (dt.state === "error") {
      clearInterval(this.timer);
      if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close();
      this.release();
    } else if (this.t0 !== null) this.pump();
    else if (this.ws) this.cancel();
  }

  cancel() {
    this.release();
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
    }
    dt.state = "ready";
    updateButtons();
  }

  release() {
    if (this.mic) this.mic.stream.getTracks().forEach((t) => t.stop());
  }
}

// ---------------------------------------------------------------------------------------------------
// the page

function updateButtons() {
  const active = session && ["starting", "streaming", "finishing"].includes(dt.state);
  $("start").disabled = !rig || !dt.model?.streamable || !!active;
  $("stop").disabled = !active || dt.state === "finishing";
}

async function onStart() {
  clearError();
  try {
    const choices = readChoices();
    for (const person of PEOPLE) {
      dt.frames[person] = [];
      dt.jaw[person] = [];
      dt.speaking[person] = [];
      dt.shown[person] = -1;
      showFrame(person, null);
    }
    dt.latencies = [];
    dt.latency = { p50: null, p95: null, n: 0 };
    dt.hello = null;
    dt.done = null;
    dt.sent = 0;
    dt.state = "starting";
    session?.ctx?.close(); // the previous session's audio
    session = new Session(dt.model, choices);
    updateButtons();
    await session.start();
  } catch (e) {
    fail(e.message);
  }
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

let lastText = 0;
function tick() {
  requestAnimationFrame(tick);
  if (!rig) return;
  const k = session ? session.clockFrame() : -1;
  for (const person of PEOPLE) {
    const n = dt.frames[person].length;
    const idx = Math.min(k, n - 1); // frame k at k / fps of playback, or the latest one when it is late
    if (idx >= 0 && idx !== dt.shown[person]) {
      showFrame(person, dt.frames[person][idx]);
      dt.shown[person] = idx;
    }
    const flags = dt.speaking[person];
    const badge = $(`badge-${person}`);
    const flag = k >= 0 && k < flags.length ? flags[k] : null; // idle before and after the audio
    badge.textContent = flag === null ? "idle" : flag ? "speaking" : "listening";
    badge.className = `badge ${badge.textContent}`;
  }
  if (dirty) render();
  const now = performance.now();
  if (now - lastText > 250) {
    lastText = now;
    updateText();
  }
}

function updateText() {
  if (dt.latencies.length) {
    const sorted = [...dt.latencies].sort((a, b) => a - b);
    dt.latency = { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), n: sorted.length };
    const algo = dt.hello ? ` + ${dt.hello.latency_ms} ms algorithmic (the model's lookahead)` : "";
    $("latency").textContent =
      `latency, audio sent → its frame received: p50 ${dt.latency.p50.toFixed(0)} ms, ` +
      `p95 ${dt.latency.p95.toFixed(0)} ms over ${dt.latency.n} frames${algo}`;
  }
  const counts = PEOPLE.filter((p) => dt.mode === "joint" || p === "A").map((p) => `${p} ${dt.frames[p].length}`);
  const seconds = session?.sent && session.sr ? (session.sent / session.sr).toFixed(1) : "0.0";
  const text = {
    loading: "loading…",
    ready: "ready: choose the voices, then Start",
    starting: "starting…",
    streaming: `streaming: ${seconds} s of audio sent · frames ${counts.join(", ")}`,
    finishing: `finishing: ${seconds} s of audio sent · frames ${counts.join(", ")}`,
    done: `done: frames ${counts.join(", ")}`,
    error: "stopped by the error above",
  }[dt.state];
  $("status").textContent = text;
}

async function init() {
  try {
    const [models, def] = await Promise.all([getJSON("/v1/models"), getJSON("/v1/head")]);
    const info = models.models[0];
    dt.model = info;
    const what = info.joint ? "both heads generated" : "person A generated, B heard only";
    $("model").textContent =
      `${info.name} · ${info.variant} · ${what} · ${info.latency_ms ?? "-"} ms algorithmic latency · ${def.kind} head`;
    $("note-B").textContent = info.joint ? "" : "(voice only: this model generates one person)";
    buildHeads(def);
    if (!info.streamable)
      throw new Error(`the served model ${info.name} is ${info.variant}, not causal: the page needs a streaming model`);
    dt.state = "ready";
  } catch (e) {
    fail(e.message);
  }
  updateButtons();
  updateText();
}

$("start").addEventListener("click", onStart);
$("stop").addEventListener("click", () => session?.stop());
requestAnimationFrame(tick);
init();
