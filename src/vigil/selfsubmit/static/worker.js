/* Hashing in a Web Worker: the file is read and decoded here, on the device, and only
 * its hashes go back to the page. Nothing in this worker talks to the network. */
importScripts("pdq.js", "md5.js");

var MAX_PIXELS = 50000000;            // larger pictures are refused before decoding
var MAX_IMAGE_BYTES = 64 * 1048576;
var MAX_VIDEO_BYTES = 1024 * 1048576;

function u32be(b, o) { return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0; }
function u16be(b, o) { return (b[o] << 8) | b[o + 1]; }
function u16le(b, o) { return b[o] | (b[o + 1] << 8); }
function ascii(b, o, n) { return String.fromCharCode.apply(null, b.subarray(o, o + n)); }

/* What the first bytes say the file is: "image", "video" or "other". */
function sniff(b) {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image";
  if (b.length >= 8 && u32be(b, 0) === 0x89504e47) return "image";
  if (b.length >= 6 && ascii(b, 0, 4) === "GIF8") return "image";
  if (b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") return "image";
  if (b.length >= 2 && ascii(b, 0, 2) === "BM") return "image";
  if (b.length >= 12 && ascii(b, 4, 4) === "ftyp") {
    var brand = ascii(b, 8, 4);
    if (/^(heic|heix|mif1|msf1|avif)/.test(brand)) return "other";
    return "video";
  }
  if (b.length >= 4 && u32be(b, 0) === 0x1a45dfa3) return "video";
  if (b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "AVI ") return "video";
  return "other";
}

/* Width and height from the header, before anything is decoded (null: unknown). */
function dimensions(b) {
  if (u32be(b, 0) === 0x89504e47 && b.length >= 24) return [u32be(b, 16), u32be(b, 20)];
  if (ascii(b, 0, 4) === "GIF8" && b.length >= 10) return [u16le(b, 6), u16le(b, 8)];
  if (b[0] === 0xff && b[1] === 0xd8) {
    var o = 2;
    while (o + 9 < b.length) {
      if (b[o] !== 0xff) { o++; continue; }
      var m = b[o + 1];
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
        return [u16be(b, o + 7), u16be(b, o + 5)];
      }
      if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7) || m === 0xff) { o += 2; continue; }
      o += 2 + u16be(b, o + 2);
    }
  }
  return null;
}

function hex(buf) {
  var a = new Uint8Array(buf), s = "";
  for (var i = 0; i < a.length; i++) s += (a[i] < 16 ? "0" : "") + a[i].toString(16);
  return s;
}

async function decodeRGBA(file) {
  var bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "none",
      colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (e) {
    throw { code: "corrupt" };
  }
  var w = bitmap.width, h = bitmap.height;
  if (w * h > MAX_PIXELS) { bitmap.close(); throw { code: "too-large" }; }
  var canvas = new OffscreenCanvas(w, h);
  var ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return { data: ctx.getImageData(0, 0, w, h).data, w: w, h: h };
}

async function hashFile(file) {
  var head = new Uint8Array(await file.slice(0, 262144).arrayBuffer());
  var kind = sniff(head);
  if (kind === "other") throw { code: "not-media" };
  if (file.size > (kind === "image" ? MAX_IMAGE_BYTES : MAX_VIDEO_BYTES)) throw { code: "too-big" };
  if (kind === "image") {
    var dims = dimensions(head);
    if (dims && dims[0] * dims[1] > MAX_PIXELS) throw { code: "too-large" };
  }
  var bytes = new Uint8Array(await file.arrayBuffer());
  var out = { kind: kind, md5: VigilMD5(bytes),
              sha256: hex(await crypto.subtle.digest("SHA-256", bytes)) };
  bytes = null;
  if (kind === "image") {
    var px = await decodeRGBA(file);
    var p = VigilPDQ.pdqFromRGBA(px.data, px.w, px.h);
    out.pdq = p.hex;
    out.quality = p.quality;
    out.width = px.w;
    out.height = px.h;
  }
  return out;
}

/* Run the hashing code on a small made-up picture a few dozen times before any file
 * arrives: V8 then compiles these functions whole, with the types a real file brings, and
 * the first large picture runs optimised code from its first line (measured: a 12 MP
 * picture took 0.5-0.75 s depending on which compiled form the engine happened to use). */
(function warmUp() {
  var w = 96, h = 72, px = new Uint8ClampedArray(w * h * 4), bytes = new Uint8Array(4096);
  for (var i = 0; i < px.length; i++) px[i] = (i * 2654435761 >>> 13) & 255;
  for (var k = 0; k < 40; k++) { VigilPDQ.pdqFromRGBA(px, w, h); VigilMD5(bytes); }
})();

self.onmessage = function (ev) {
  var msg = ev.data;
  hashFile(msg.file).then(function (r) {
    self.postMessage({ id: msg.id, ok: true, result: r });
  }, function (e) {
    self.postMessage({ id: msg.id, ok: false, code: (e && e.code) || "corrupt" });
  });
};
