/* scrapeshield challenge: find a solution s such that sha256(challenge + ":" + s) starts with
   `difficulty` zero bits, then post it. Pure-JS SHA-256 (crypto.subtle is missing on plain-http
   origins and is slower per hash anyway), run in a Web Worker when one can be created, else in
   short time slices on the page so it stays responsive. No external resources. */
(function () {
  "use strict";

  function core() {
    var K = new Uint32Array([
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
      0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
      0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
      0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
      0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
      0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
    var W = new Uint32Array(64), M = new Uint8Array(128), H = new Uint32Array(8);
    var IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    /* SHA-256 of the first n byte values of `bytes`; returns the eight state words (a shared
       array, valid until the next call). */
    function sha256(bytes, n) {
      var total = ((n + 8) >> 6 << 6) + 64, i;
      var m = total <= 128 ? M : new Uint8Array(total);
      for (i = 0; i < n; i++) m[i] = bytes[i];
      m[n] = 0x80;
      for (i = n + 1; i < total - 5; i++) m[i] = 0;
      var bits = n * 8;
      m[total - 5] = (bits / 0x100000000) & 0xff;
      m[total - 4] = bits >>> 24; m[total - 3] = bits >>> 16; m[total - 2] = bits >>> 8; m[total - 1] = bits;
      var h = H;
      for (i = 0; i < 8; i++) h[i] = IV[i];
      for (var off = 0; off < total; off += 64) {
        for (i = 0; i < 16; i++) {
          var j = off + 4 * i;
          W[i] = (m[j] << 24) | (m[j + 1] << 16) | (m[j + 2] << 8) | m[j + 3];
        }
        for (i = 16; i < 64; i++) {
          var a15 = W[i - 15], a2 = W[i - 2];
          var s0 = ((a15 >>> 7) | (a15 << 25)) ^ ((a15 >>> 18) | (a15 << 14)) ^ (a15 >>> 3);
          var s1 = ((a2 >>> 17) | (a2 << 15)) ^ ((a2 >>> 19) | (a2 << 13)) ^ (a2 >>> 10);
          W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
        }
        var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
        for (i = 0; i < 64; i++) {
          var t1 = (k + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
                    ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
          var t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
                    ((a & b) ^ (a & c) ^ (b & c))) | 0;
          k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
      }
      return h;
    }

    function zeroBits(h, bits) {
      for (var i = 0; bits > 0; i++, bits -= 32) {
        if (bits >= 32 ? h[i] !== 0 : (h[i] >>> (32 - bits)) !== 0) return false;
      }
      return true;
    }

    /* Try nonces from..from+count-1; the first that works, or -1. */
    function search(prefix, bits, from, count) {
      var L = prefix.length, msg = new Uint8Array(L + 24), i;
      for (i = 0; i < L; i++) msg[i] = prefix.charCodeAt(i) & 0xff;
      for (var nonce = from; nonce < from + count; nonce++) {
        var s = String(nonce);
        for (i = 0; i < s.length; i++) msg[L + i] = s.charCodeAt(i);
        if (zeroBits(sha256(msg, L + s.length), bits)) return nonce;
      }
      return -1;
    }

    function hex(h) {
      var out = "";
      for (var i = 0; i < 8; i++) out += ("0000000" + h[i].toString(16)).slice(-8);
      return out;
    }

    return { sha256: sha256, search: search, hex: hex };
  }

  var C = core();
  window.scrapeshieldSha256Hex = function (text) {
    var bytes = unescape(encodeURIComponent(text)), arr = [];
    for (var i = 0; i < bytes.length; i++) arr.push(bytes.charCodeAt(i));
    return C.hex(C.sha256(arr, arr.length));
  };

  var node = document.getElementById("ss-challenge");
  if (!node) return;
  var data = JSON.parse(node.textContent);
  var prefix = data.challenge + ":", bits = data.difficulty, done = false;

  function submit(nonce) {
    if (done) return;
    done = true;
    var form = document.getElementById("ss-form");
    form.elements.token.value = data.token;
    form.elements.solution.value = String(nonce);
    form.elements.return_to.value = data.return_to;
    form.submit();
  }

  function onPage(from) {
    var start = Date.now();
    while (Date.now() - start < 40) {
      var found = C.search(prefix, bits, from, 2000);
      if (found >= 0) return submit(found);
      from += 2000;
    }
    setTimeout(function () { onPage(from); }, 0);
  }

  function inWorker() {
    var src = "var C=(" + core.toString() + ")();onmessage=function(e){var d=e.data,n=0,r;" +
      "for(;;){r=C.search(d.prefix,d.bits,n,50000);if(r>=0){postMessage(r);return;}n+=50000;}};";
    var url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
    var worker = new Worker(url);
    worker.onmessage = function (e) { worker.terminate(); submit(e.data); };
    worker.onerror = function (e) { e.preventDefault(); worker.terminate(); onPage(0); };
    worker.postMessage({ prefix: prefix, bits: bits });
    setTimeout(function () { if (!done) { worker.terminate(); onPage(0); } }, 20000);
  }

  try {
    if (typeof Worker === "function" && typeof Blob === "function" && window.URL) inWorker();
    else onPage(0);
  } catch (err) {
    onPage(0);
  }
})();
