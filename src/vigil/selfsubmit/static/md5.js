/* MD5 (RFC 1321) of a Uint8Array, as lowercase hex. WebCrypto has no MD5, and partners'
 * hash lists still use it; this is Vigil's own small implementation (tests compare it
 * with Python's hashlib on every kind of length). */
(function (root) {
  "use strict";
  var S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21];
  var K = new Int32Array(64);
  for (var i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;

  function md5(bytes) {
    var n = bytes.length;
    var total = ((n + 8) >>> 6) + 1;  // 64-byte blocks with padding and length
    var tail = new Uint8Array(total * 64 - Math.floor(n / 64) * 64);
    var full = Math.floor(n / 64) * 64;
    tail.set(bytes.subarray(full));
    tail[n - full] = 0x80;
    var bits = n * 8, lo = bits >>> 0, hi = Math.floor(bits / 4294967296) >>> 0;
    var e = tail.length - 8;
    tail[e] = lo & 255; tail[e + 1] = (lo >>> 8) & 255; tail[e + 2] = (lo >>> 16) & 255;
    tail[e + 3] = (lo >>> 24) & 255; tail[e + 4] = hi & 255; tail[e + 5] = (hi >>> 8) & 255;
    tail[e + 6] = (hi >>> 16) & 255; tail[e + 7] = (hi >>> 24) & 255;
    var a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    var M = new Int32Array(16);
    function block(buf, off) {
      for (var j = 0; j < 16; j++) {
        var o = off + j * 4;
        M[j] = buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16) | (buf[o + 3] << 24);
      }
      var A = a0, B = b0, C = c0, D = d0, F, g;
      for (var k = 0; k < 64; k++) {
        if (k < 16) { F = (B & C) | (~B & D); g = k; }
        else if (k < 32) { F = (D & B) | (~D & C); g = (5 * k + 1) & 15; }
        else if (k < 48) { F = B ^ C ^ D; g = (3 * k + 5) & 15; }
        else { F = C ^ (B | ~D); g = (7 * k) & 15; }
        F = (F + A + K[k] + M[g]) | 0;
        A = D; D = C; C = B;
        B = (B + ((F << S[k]) | (F >>> (32 - S[k])))) | 0;
      }
      a0 = (a0 + A) | 0; b0 = (b0 + B) | 0; c0 = (c0 + C) | 0; d0 = (d0 + D) | 0;
    }
    for (var off = 0; off < full; off += 64) block(bytes, off);
    for (off = 0; off < tail.length; off += 64) block(tail, off);
    var hex = "";
    [a0, b0, c0, d0].forEach(function (v) {
      for (var j = 0; j < 4; j++) {
        var x = (v >>> (8 * j)) & 255;
        hex += (x < 16 ? "0" : "") + x.toString(16);
      }
    });
    return hex;
  }
  root.VigilMD5 = md5;
})(typeof self !== "undefined" ? self : this);
