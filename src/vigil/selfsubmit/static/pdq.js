/* Vigil's PDQ in JavaScript: bit-identical to Meta's C++ reference (pdqhash) on the same
 * pixels. A transcription of vigil.signals.pdq_luma (whose docstring lists every step):
 * every float32 operation of the reference is a float32 operation here (Math.fround, or
 * a store into a Float32Array), in the same order. Runs in a page or a Web Worker. */
(function (root) {
  "use strict";
  var f = Math.fround;

  /* Rows 1..16 of the 64-point DCT-II basis, rounded as the reference does. */
  var DCT = (function () {
    var d = new Float32Array(16 * 64);
    var scale = f(Math.sqrt(2.0 / 64.0));
    var base = Math.PI / 2.0 / 64.0;
    for (var i = 0; i < 16; i++) {
      for (var j = 0; j < 64; j++) {
        d[i * 64 + j] = f(scale * Math.cos(base * (i + 1) * (2 * j + 1)));
      }
    }
    return d;
  })();

  /* Luma of RGBA (canvas ImageData) pixels: float64 (R*0.299 + G*0.587) + B*0.114,
   * rounded once to float32. */
  function lumaFromRGBA(rgba, w, h) {
    var n = w * h, out = new Float32Array(n);
    for (var p = 0, q = 0; p < n; p++, q += 4) {
      out[p] = rgba[q] * 0.299 + rgba[q + 1] * 0.587 + rgba[q + 2] * 0.114;
    }
    return out;
  }

  function lumaFromRGB(rgb, w, h) {
    var n = w * h, out = new Float32Array(n);
    for (var p = 0, q = 0; p < n; p++, q += 3) {
      out[p] = rgb[q] * 0.299 + rgb[q + 1] * 0.587 + rgb[q + 2] * 0.114;
    }
    return out;
  }

  function windowOf(n) { return Math.floor((n + 127) / 128); }
  function sampleIndex(k, n) { return Math.floor(((k + 0.5) * n) / 64); }

  /* The reference's running 1-D box filter over src[off + i*stride], i < n. */
  function box1d(src, off, stride, n, win, dst, doff, dstride) {
    var half = Math.floor((win + 2) / 2);
    var p1 = half - 1, p2 = win - half + 1, p3 = n - win, p4 = half - 1;
    var s = 0, ri = off, li = off, oi = doff, cnt = 0, k;
    for (k = 0; k < p1; k++) { s = f(s + src[ri]); cnt++; ri += stride; }
    for (k = 0; k < p2; k++) {
      s = f(s + src[ri]); cnt++; dst[oi] = s / cnt; ri += stride; oi += dstride;
    }
    for (k = 0; k < p3; k++) {
      s = f(s + src[ri]); s = f(s - src[li]); dst[oi] = s / cnt;
      li += stride; ri += stride; oi += dstride;
    }
    for (k = 0; k < p4; k++) {
      s = f(s - src[li]); cnt--; dst[oi] = s / cnt; li += stride; oi += dstride;
    }
  }

  /* The same filter along every column of an (h, w) plane, all columns together (one
   * running float32 sum per column; cache-friendly, same operations per value). */
  function boxCols(src, w, h, win, dst) {
    var half = Math.floor((win + 2) / 2);
    var p1 = half - 1, p2 = win - half + 1, p3 = h - win, p4 = half - 1;
    var s = new Float32Array(w), ri = 0, li = 0, oi = 0, cnt = 0, k, j, x, y, o;
    for (k = 0; k < p1; k++) {
      x = ri * w; for (j = 0; j < w; j++) s[j] += src[x + j];
      cnt++; ri++;
    }
    for (k = 0; k < p2; k++) {
      cnt++; x = ri * w; o = oi * w;
      for (j = 0; j < w; j++) { s[j] += src[x + j]; dst[o + j] = s[j] / cnt; }
      ri++; oi++;
    }
    for (k = 0; k < p3; k++) {
      x = ri * w; y = li * w; o = oi * w;
      for (j = 0; j < w; j++) { s[j] += src[x + j]; s[j] -= src[y + j]; dst[o + j] = s[j] / cnt; }
      ri++; li++; oi++;
    }
    for (k = 0; k < p4; k++) {
      cnt--; y = li * w; o = oi * w;
      for (j = 0; j < w; j++) { s[j] -= src[y + j]; dst[o + j] = s[j] / cnt; }
      li++; oi++;
    }
  }

  /* Two full-size planes kept between pictures up to KEEP pixels (2 x 52 MB): allocating
   * them afresh for every 12 MP picture made PDQ 214 ms against 170 ms (Chromium, after
   * the worker's warm-up). Larger pictures get planes of their own, freed after. Every
   * value is written before it is read, so what a previous picture left never shows. */
  var KEEP = 13000000;
  var planes = [new Float32Array(0), new Float32Array(0)];
  function scratch(k, n) {
    if (n > KEEP) return new Float32Array(n);
    if (planes[k].length < n) planes[k] = new Float32Array(n);
    return planes[k].subarray(0, n);
  }

  /* Two rounds of (rows, then columns) box filtering, decimated to 64x64. The second
   * round's rows keep only the 64 sampled columns (each is the same running sum). */
  function downscale(luma, w, h) {
    var out = new Float32Array(64 * 64), i, m;
    if (w === 64 && h === 64) { out.set(luma); return out; }
    var wr = windowOf(w), wc = windowOf(h);
    var cols = new Int32Array(64);
    for (m = 0; m < 64; m++) cols[m] = sampleIndex(m, w);
    var a = scratch(0, w * h), b = scratch(1, w * h);
    for (i = 0; i < h; i++) box1d(luma, i * w, 1, w, wr, a, i * w, 1);
    boxCols(a, w, h, wc, b);
    var row = new Float32Array(w), strip = new Float32Array(h * 64);
    for (i = 0; i < h; i++) {
      box1d(b, i * w, 1, w, wr, row, 0, 1);
      for (m = 0; m < 64; m++) strip[i * 64 + m] = row[cols[m]];
    }
    var full = new Float32Array(h * 64);
    boxCols(strip, 64, h, wc, full);
    for (i = 0; i < 64; i++) {
      var src = sampleIndex(i, h) * 64;
      for (m = 0; m < 64; m++) out[i * 64 + m] = full[src + m];
    }
    return out;
  }

  function quality(a) {
    var total = 0, i, j, d;
    for (i = 0; i < 63; i++) {
      for (j = 0; j < 64; j++) {
        d = Math.trunc(f(f(f(a[i * 64 + j] - a[(i + 1) * 64 + j]) * 100) / 255));
        total += Math.abs(d);
      }
    }
    for (i = 0; i < 64; i++) {
      for (j = 0; j < 63; j++) {
        d = Math.trunc(f(f(f(a[i * 64 + j] - a[i * 64 + j + 1]) * 100) / 255));
        total += Math.abs(d);
      }
    }
    return Math.min(Math.floor(total / 90), 100);
  }

  function dct16(a) {
    var t = new Float32Array(16 * 64), b = new Float32Array(256), i, j, k;
    for (i = 0; i < 16; i++) {
      for (k = 0; k < 64; k++) {
        var d = DCT[i * 64 + k];
        for (j = 0; j < 64; j++) t[i * 64 + j] = f(t[i * 64 + j] + f(d * a[k * 64 + j]));
      }
    }
    for (i = 0; i < 16; i++) {
      for (j = 0; j < 16; j++) {
        var s = 0;
        for (k = 0; k < 64; k++) s = f(s + f(t[i * 64 + k] * DCT[j * 64 + k]));
        b[i * 16 + j] = s;
      }
    }
    return b;
  }

  function toHex(b) {
    var sorted = Float32Array.from(b).sort();
    var median = sorted[127], out = new Uint8Array(32), k, hex = "";
    for (k = 0; k < 256; k++) {
      if (b[k] > median) out[31 - (k >> 3)] |= 1 << (k & 7);
    }
    for (k = 0; k < 32; k++) hex += (out[k] < 16 ? "0" : "") + out[k].toString(16);
    return hex;
  }

  /* PDQ of a float32 luma plane: {hex, quality}. */
  function pdqFromLuma(luma, w, h) {
    if (w < 5 || h < 5) return { hex: "0".repeat(64), quality: 0 };
    var a = downscale(luma, w, h);
    return { hex: toHex(dct16(a)), quality: quality(a) };
  }

  root.VigilPDQ = {
    lumaFromRGBA: lumaFromRGBA,
    lumaFromRGB: lumaFromRGB,
    pdqFromLuma: pdqFromLuma,
    pdqFromRGBA: function (rgba, w, h) { return pdqFromLuma(lumaFromRGBA(rgba, w, h), w, h); },
    pdqFromRGB: function (rgb, w, h) { return pdqFromLuma(lumaFromRGB(rgb, w, h), w, h); }
  };
})(typeof self !== "undefined" ? self : this);
