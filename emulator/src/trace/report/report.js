// cmaemu report: hand-written, no dependencies, no network.
// Reads the JSON in <script id="data">, replays page states and pageblock
// types from per-frame deltas, and draws the map, the allocation
// timeline, the counters and the lists. `window.cmaReport` is a small
// hook for tests (setFrame, frame count, allocations).
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('data').textContent);
  var app = document.getElementById('app');
  var L = D.layout;
  var PER_ROW = 16, CELL_W = 64, AXIS_W = 92, BAND = 13;

  function esc(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  }
  function hex(n) { return '0x' + Number(n).toString(16); }
  function addr(pfn) { return '0x' + (pfn * 4096).toString(16).padStart(8, '0'); }
  function ms(ns) { return (ns / 1e6).toFixed(3); }
  function el(tag, attrs, html) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (html !== undefined) e.innerHTML = html;
    return e;
  }
  function lowerBound(arr, key, v) {
    var lo = 0, hi = arr.length;
    while (lo < hi) { var m = (lo + hi) >> 1; if (key(arr[m]) <= v) lo = m + 1; else hi = m; }
    return lo;
  }

  // ---- frames ---------------------------------------------------------
  var frames = D.frames.map(function (f) { return { index: f[0], ts: f[1] }; });
  if (frames.length === 0) {
    // a trace without frame events: one frame per distinct frame number
    var seen = {};
    D.pb.forEach(function (x) { seen[x[0]] = true; });
    D.ps.forEach(function (x) { seen[x[0]] = true; });
    D.counters.forEach(function (x) { seen[x[1]] = true; });
    Object.keys(seen).map(Number).sort(function (a, b) { return a - b; }).forEach(function (f) { frames.push({ index: f, ts: 0 }); });
  }
  if (frames.length === 0) frames.push({ index: 0, ts: 0 });
  var lastTs = frames[frames.length - 1].ts;
  D.allocs.forEach(function (a) { lastTs = Math.max(lastTs, a[5] === null ? a[3] : a[5]); });
  D.counters.forEach(function (c) { lastTs = Math.max(lastTs, c[0]); });
  lastTs = Math.max(lastTs, 1);

  // ---- header, parameters, stats ---------------------------------------
  app.innerHTML = '';
  app.appendChild(el('h1', null, 'cmaemu report: ' + esc(D.title)));
  var params = [];
  if (D.run) {
    params.push(['device tree', esc(D.run.dtb)], ['command line', '<span class="mono">' + esc(D.run.cmdline) + '</span>'],
      ['profile', esc(D.run.profile)], ['RAM', (D.run.ram_bytes / 1048576) + ' MiB']);
  }
  if (L) {
    params.push(['pages', L.nr_pages + ' from pfn ' + hex(L.base_pfn) + ' (' + addr(L.base_pfn) + ')'],
      ['pageblock', L.pageblock_pages + ' pages (' + (L.pageblock_pages * 4) + ' KiB), MAX_ORDER ' + L.max_order]);
    L.zones.forEach(function (z) { params.push(['zone ' + esc(z[0]), '<span class="addr">' + addr(z[1]) + '-' + addr(z[2]) + '</span> (' + ((z[2] - z[1]) / 256) + ' MiB)']); });
    L.areas.forEach(function (z) { params.push(['CMA area ' + esc(z[0]), '<span class="addr">' + addr(z[1]) + '-' + addr(z[2]) + '</span> (' + ((z[2] - z[1]) / 256) + ' MiB)']); });
  }
  var nFail = D.allocs.filter(function (a) { return a[7] === null; }).length;
  var stats = D.stats.slice();
  stats.push(['cma_alloc calls', D.allocs.length + ' (' + nFail + ' failed or unfinished)'], ['cma_release calls', D.releases.length], ['violations', D.violations.length]);
  var dropped = 0, repeated = 0, prevCam = null, dispSeries = [];
  D.display.forEach(function (d) {
    var cam = d[3];
    if (cam !== null && prevCam !== null) {
      if (cam === prevCam) repeated++;
      else if (cam > prevCam + 1) dropped += cam - prevCam - 1;
    }
    if (cam !== null) prevCam = cam;
    dispSeries.push([d[0], dropped, repeated]);
  });
  stats.push(['displayed frames', D.display.length], ['camera frames never shown (dropped)', dropped], ['frames shown again (repeated)', repeated]);
  function kvTable(rows) {
    return '<table>' + rows.map(function (r) { return '<tr><th>' + r[0] + '</th><td>' + r[1] + '</td></tr>'; }).join('') + '</table>';
  }
  var cols = el('div', { 'class': 'cols' });
  cols.appendChild(el('div', { id: 'params' }, '<h2>Run</h2>' + (params.length ? kvTable(params) : '<p class="note">The trace has no run parameters.</p>')));
  cols.appendChild(el('div', { id: 'stats' }, '<h2>Stats</h2>' + kvTable(stats.map(function (s) { return [esc(s[0]), esc(s[1])]; }))));
  app.appendChild(cols);

  // ---- controls ----------------------------------------------------------
  var controls = el('div', { id: 'controls' });
  controls.innerHTML = '<button id="play">play</button><input type="range" id="slider" min="0" max="' + (frames.length - 1) + '" value="0"><span id="frameinfo"></span>';
  app.appendChild(controls);
  var slider = controls.querySelector('#slider'), playBtn = controls.querySelector('#play'), info = controls.querySelector('#frameinfo');

  // ---- state replay -------------------------------------------------------
  var pages = L ? new Uint8Array(L.nr_pages) : new Uint8Array(0);
  var psPos = 0; // entries of D.ps applied
  var CK = 256, checkpoints = {};
  function applyPs(i) {
    var runs = D.ps[i][2], base = L ? L.base_pfn : 0;
    for (var k = 0; k + 2 < runs.length; k += 3) {
      var lo = runs[k] - base, hi = Math.min(lo + runs[k + 1], pages.length);
      if (lo < 0) lo = 0;
      pages.fill(runs[k + 2], lo, hi);
    }
  }
  function replayTo(frame) {
    var target = lowerBound(D.ps, function (x) { return x[0]; }, frame); // entries with frame <= target
    if (target < psPos) {
      var c = Math.floor(target / CK) * CK;
      while (c > 0 && !checkpoints[c]) c -= CK;
      if (c > 0) pages.set(checkpoints[c]); else pages.fill(0);
      psPos = c;
    }
    while (psPos < target) {
      applyPs(psPos);
      psPos++;
      if (psPos % CK === 0 && !checkpoints[psPos]) checkpoints[psPos] = pages.slice();
    }
  }
  function mtsAt(frame) {
    var i = lowerBound(D.pb, function (x) { return x[0]; }, frame) - 1;
    return i >= 0 ? D.pb[i] : (D.pb.length ? D.pb[0] : null);
  }

  // ---- memory map ----------------------------------------------------------
  app.appendChild(el('h2', null, 'Physical memory'));
  var legend = el('div', { 'class': 'legend' });
  legend.innerHTML = '<b>pageblock (border):</b>' + D.mt_names.map(function (n, i) { return '<span class="sw" style="background:' + D.mt_colors[i] + '"></span>' + esc(n); }).join('') +
    '<br><b>page (fill):</b>' + D.page_states.map(function (n, i) { return '<span class="sw" style="background:' + D.page_colors[i] + '"></span>' + esc(n); }).join('') +
    '<br><b>bands:</b><span class="sw" style="background:#cdd7e6"></span>zone<span class="sw" style="background:#3c6edc"></span>CMA area' +
    '<span class="sw" style="background:#e0306a"></span>migration old &#8594; new in this frame';
  app.appendChild(legend);
  var mapwrap = el('div', { id: 'mapwrap' });
  var canvas = el('canvas', { id: 'map' });
  var tip = el('div', { id: 'tip' });
  mapwrap.appendChild(canvas);
  mapwrap.appendChild(tip);
  app.appendChild(mapwrap);
  var zoominfo = el('div', { id: 'zoominfo' }, '<span class="note">Click a pageblock to zoom into its pages.</span>');
  app.appendChild(zoominfo);
  var zcanvas = el('canvas', { id: 'zoom', width: 10, height: 10 });
  app.appendChild(zcanvas);

  var ppb = 1, firstPfn = 0, nblocks = 0, cellH = 16, rowH = 0;
  var pb0 = D.pb.length ? D.pb[0] : null;
  if (pb0) { firstPfn = pb0[1]; ppb = pb0[2]; nblocks = pb0[3].length; }
  else if (L) { ppb = L.pageblock_pages; firstPfn = L.base_pfn - (L.base_pfn % ppb); nblocks = Math.ceil((L.base_pfn + L.nr_pages - firstPfn) / ppb); }
  cellH = Math.max(16, Math.min(64, Math.floor(ppb / CELL_W)));
  rowH = 2 * BAND + cellH + 8;
  var rows = Math.max(1, Math.ceil(nblocks / PER_ROW));
  canvas.width = AXIS_W + PER_ROW * CELL_W + 8;
  canvas.height = rows * rowH + 4;
  var ctx = canvas.getContext('2d');
  var zoomBlock = null;

  function pfnXY(pfn) { // pixel of a page inside its cell
    var rel = pfn - firstPfn, blk = Math.floor(rel / ppb), k = rel % ppb;
    var r = Math.floor(blk / PER_ROW), c = blk % PER_ROW;
    var p = Math.floor(k * CELL_W * cellH / ppb);
    return [AXIS_W + c * CELL_W + (p % CELL_W), r * rowH + 2 * BAND + Math.floor(p / CELL_W)];
  }
  function boundaryX(pfn) {
    var rel = pfn - firstPfn, x = rel * CELL_W / ppb, row = Math.floor(x / (PER_ROW * CELL_W));
    return [row, AXIS_W + (x - row * PER_ROW * CELL_W)];
  }
  function spanBands(spans, band, colorOf) {
    spans.forEach(function (z, i) {
      var s = Math.max(z[1], firstPfn), e = z[2];
      while (s < e) {
        var b = boundaryX(s), rowEnd = firstPfn + (b[0] + 1) * PER_ROW * ppb, ee = Math.min(e, rowEnd);
        var x1 = boundaryX(ee)[1]; if (ee === rowEnd) x1 = AXIS_W + PER_ROW * CELL_W;
        var y = b[0] * rowH + band * BAND;
        ctx.fillStyle = colorOf(i); ctx.fillRect(b[1], y, x1 - b[1], BAND - 1);
        ctx.fillStyle = band ? '#fff' : '#000'; ctx.font = '10px monospace';
        ctx.save(); ctx.beginPath(); ctx.rect(b[1], y, x1 - b[1], BAND); ctx.clip();
        ctx.fillText(z[0] + (s === z[1] ? ' ' + addr(z[1]) : ''), b[1] + 3, y + 10);
        ctx.restore();
        s = ee;
      }
    });
  }
  var pcol = D.page_colors.map(function (c) { return [parseInt(c.substr(1, 2), 16), parseInt(c.substr(3, 2), 16), parseInt(c.substr(5, 2), 16)]; });
  function drawMap(fi) {
    var f = frames[fi].index;
    replayTo(f);
    var pbm = mtsAt(f), mts = pbm ? pbm[3] : '';
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.font = '11px monospace';
    for (var r = 0; r < rows; r++) {
      ctx.fillStyle = '#000';
      ctx.fillText(addr(firstPfn + r * PER_ROW * ppb), 4, r * rowH + 2 * BAND + cellH / 2 + 4);
    }
    if (L) {
      spanBands(L.zones, 0, function (i) { return ['#cdd7e6', '#e1d7c3', '#cde6d2', '#e6cddc'][i % 4]; });
      spanBands(L.areas, 1, function () { return '#3c6edc'; });
    }
    var img = ctx.getImageData(AXIS_W, 0, PER_ROW * CELL_W, rows * rowH);
    var px = img.data, W = PER_ROW * CELL_W, base = L ? L.base_pfn : 0, hasPages = L && D.ps.length > 0;
    for (var b = 0; b < nblocks; b++) {
      var r0 = Math.floor(b / PER_ROW), c0 = b % PER_ROW, x0 = c0 * CELL_W, y0 = r0 * rowH + 2 * BAND;
      var mt = parseInt(mts.charAt(b), 16); if (isNaN(mt) || mt >= D.mt_colors.length) mt = -1;
      var mc = mt >= 0 ? pcolOf(D.mt_colors[mt]) : [0, 0, 0];
      for (var k = 0; k < ppb; k++) {
        var pfn = firstPfn + b * ppb + k, o = pfn - base, col;
        if (!hasPages) col = mc;
        else col = (o >= 0 && o < pages.length) ? pcol[pages[o]] : [255, 255, 255];
        var p = Math.floor(k * CELL_W * cellH / ppb), x = x0 + (p % CELL_W), y = y0 + Math.floor(p / CELL_W);
        var i = (y * W + x) * 4;
        px[i] = col[0]; px[i + 1] = col[1]; px[i + 2] = col[2]; px[i + 3] = 255;
      }
      if (hasPages) {
        for (var t = 0; t < 3; t++) {
          for (var xx = x0; xx < x0 + CELL_W; xx++) { setPx(px, W, xx, y0 + t, mc); setPx(px, W, xx, y0 + cellH - 1 - t, mc); }
          for (var yy = y0; yy < y0 + cellH; yy++) { setPx(px, W, x0 + t, yy, mc); setPx(px, W, x0 + CELL_W - 1 - t, yy, mc); }
        }
      }
      for (var yy2 = y0; yy2 < y0 + cellH; yy2++) setPx(px, W, x0 + CELL_W - 1, yy2, [255, 255, 255]);
    }
    ctx.putImageData(img, AXIS_W, 0);
    if (L) {
      ctx.fillStyle = '#000';
      L.zones.concat(L.areas).forEach(function (z) {
        [z[1], z[2]].forEach(function (pfn) {
          var b = boundaryX(pfn);
          if (b[0] >= 0 && b[0] < rows) ctx.fillRect(b[1] - 1, b[0] * rowH, 2, 2 * BAND + cellH);
        });
      });
    }
    if (zoomBlock !== null) {
      var zr = Math.floor(zoomBlock / PER_ROW), zc = zoomBlock % PER_ROW;
      ctx.strokeStyle = '#000'; ctx.lineWidth = 2; ctx.strokeRect(AXIS_W + zc * CELL_W - 1, zr * rowH + 2 * BAND - 1, CELL_W + 2, cellH + 2);
    }
    drawMigrations(f);
    drawZoom(f, mts);
  }
  function pcolOf(c) { return [parseInt(c.substr(1, 2), 16), parseInt(c.substr(3, 2), 16), parseInt(c.substr(5, 2), 16)]; }
  function setPx(px, W, x, y, c) { var i = (y * W + x) * 4; px[i] = c[0]; px[i + 1] = c[1]; px[i + 2] = c[2]; px[i + 3] = 255; }
  // migrations of a frame: D.migr is [start, dur, frame, old, new]*
  var migrFrameIdx = [];
  for (var mi = 0; mi < D.migr.length; mi += 5) migrFrameIdx.push(D.migr[mi + 2]);
  function migrationsOf(f) {
    var lo = lowerBound(migrFrameIdx, function (x) { return x; }, f - 1), out = [];
    for (var i = lo; i < migrFrameIdx.length && migrFrameIdx[i] === f; i++) out.push([D.migr[i * 5 + 3], D.migr[i * 5 + 4]]);
    return out;
  }
  function drawMigrations(f) {
    var ms_ = migrationsOf(f), step = Math.max(1, Math.ceil(ms_.length / 300));
    ctx.strokeStyle = 'rgba(224,48,106,0.55)'; ctx.fillStyle = 'rgba(224,48,106,0.9)'; ctx.lineWidth = 1;
    for (var i = 0; i < ms_.length; i += step) {
      var a = pfnXY(ms_[i][0]), b = pfnXY(ms_[i][1]);
      ctx.beginPath(); ctx.moveTo(a[0] + 0.5, a[1] + 0.5); ctx.lineTo(b[0] + 0.5, b[1] + 0.5); ctx.stroke();
      var ang = Math.atan2(b[1] - a[1], b[0] - a[0]);
      ctx.beginPath(); ctx.moveTo(b[0], b[1]);
      ctx.lineTo(b[0] - 6 * Math.cos(ang - 0.4), b[1] - 6 * Math.sin(ang - 0.4));
      ctx.lineTo(b[0] - 6 * Math.cos(ang + 0.4), b[1] - 6 * Math.sin(ang + 0.4)); ctx.fill();
    }
    migrCount = ms_.length;
  }
  var migrCount = 0;
  function blockAt(ev) {
    var r = canvas.getBoundingClientRect(), x = ev.clientX - r.left - AXIS_W, y = ev.clientY - r.top;
    var row = Math.floor(y / rowH), yy = y - row * rowH - 2 * BAND;
    if (x < 0 || x >= PER_ROW * CELL_W || row < 0 || row >= rows) return null;
    var b = row * PER_ROW + Math.floor(x / CELL_W);
    if (b >= nblocks) return null;
    var k = null;
    if (yy >= 0 && yy < cellH) k = Math.floor(((yy * CELL_W + (x % CELL_W)) * ppb) / (CELL_W * cellH));
    return { block: b, page: k };
  }
  function pageInfo(pfn) {
    var o = L ? pfn - L.base_pfn : -1, st = (o >= 0 && o < pages.length && D.ps.length) ? D.page_states[pages[o]] : 'no page record';
    var area = L ? L.areas.filter(function (a) { return pfn >= a[1] && pfn < a[2]; }).map(function (a) { return a[0]; })[0] : null;
    return 'pfn ' + hex(pfn) + '  ' + addr(pfn) + '\n' + st + (area ? '  [CMA ' + area + ']' : '');
  }
  canvas.addEventListener('mousemove', function (ev) {
    var h = blockAt(ev);
    if (!h) { tip.style.display = 'none'; return; }
    var pbm = mtsAt(frames[cur].index), mt = pbm ? parseInt(pbm[3].charAt(h.block), 16) : NaN;
    var s = firstPfn + h.block * ppb;
    var t = 'pageblock ' + h.block + ': ' + addr(s) + '-' + addr(s + ppb) + '  ' + (D.mt_names[mt] || 'type ' + mt);
    if (h.page !== null) t += '\n' + pageInfo(s + h.page);
    tip.textContent = t; tip.style.display = 'block';
    var r = canvas.getBoundingClientRect();
    tip.style.left = (ev.clientX - r.left + 14) + 'px'; tip.style.top = (ev.clientY - r.top + 14) + 'px';
  });
  canvas.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  canvas.addEventListener('click', function (ev) {
    var h = blockAt(ev);
    zoomBlock = h ? h.block : null;
    drawMap(cur);
  });
  var ZP = 9, ZCOLS = 64;
  function drawZoom(f, mts) {
    var zc = zcanvas.getContext('2d');
    if (zoomBlock === null) { zcanvas.width = 10; zcanvas.height = 10; zc.clearRect(0, 0, 10, 10); return; }
    var s = firstPfn + zoomBlock * ppb, mt = parseInt(mts.charAt(zoomBlock), 16);
    zoominfo.innerHTML = 'Pageblock ' + zoomBlock + ' <span class="addr">' + addr(s) + '-' + addr(s + ppb) + '</span> (' + esc(D.mt_names[mt] || 'type ' + mt) + '), ' + ppb + ' pages, one square each; hover for details. <a class="fr" id="unzoom">close</a>';
    zoominfo.querySelector('#unzoom').onclick = function () { zoomBlock = null; zoominfo.innerHTML = '<span class="note">Click a pageblock to zoom into its pages.</span>'; drawMap(cur); };
    var zrows = Math.ceil(ppb / ZCOLS);
    zcanvas.width = ZCOLS * ZP + 90; zcanvas.height = zrows * ZP + 2;
    zc.fillStyle = '#fff'; zc.fillRect(0, 0, zcanvas.width, zcanvas.height);
    zc.font = '10px monospace'; zc.fillStyle = '#000';
    var base = L ? L.base_pfn : 0;
    for (var k = 0; k < ppb; k++) {
      var o = s + k - base;
      zc.fillStyle = (D.ps.length && o >= 0 && o < pages.length) ? D.page_colors[pages[o]] : (D.mt_colors[mt] || '#000');
      zc.fillRect(90 + (k % ZCOLS) * ZP, 1 + Math.floor(k / ZCOLS) * ZP, ZP - 1, ZP - 1);
    }
    zc.fillStyle = '#000';
    for (var r = 0; r < zrows; r += 4) zc.fillText(addr(s + r * ZCOLS), 2, 1 + r * ZP + 9);
  }
  zcanvas.addEventListener('mousemove', function (ev) {
    if (zoomBlock === null) return;
    var r = zcanvas.getBoundingClientRect(), x = ev.clientX - r.left - 90, y = ev.clientY - r.top - 1;
    if (x < 0) { zcanvas.title = ''; return; }
    var k = Math.floor(y / ZP) * ZCOLS + Math.floor(x / ZP);
    if (k >= 0 && k < ppb) zcanvas.title = pageInfo(firstPfn + zoomBlock * ppb + k);
  });

  // ---- allocation timeline ----------------------------------------------
  app.appendChild(el('h2', null, 'Allocations, releases and migrations over time'));
  var areas = L ? L.areas.map(function (a) { return a[0]; }) : [];
  D.allocs.concat(D.releases).forEach(function (a) { if (areas.indexOf(a[0]) < 0) areas.push(a[0]); });
  var TLW = 1160, LANE = 22, LBL = 110, plotW = TLW - LBL - 10;
  var tlLanes = areas.length + 3;
  var tlH = tlLanes * LANE + 30;
  function tx(ns) { return LBL + (ns / lastTs) * plotW; }
  var svg = [];
  svg.push('<svg id="tlsvg" width="' + TLW + '" height="' + tlH + '" viewBox="0 0 ' + TLW + ' ' + tlH + '">');
  for (var ti = 0; ti <= 10; ti++) {
    var tns = lastTs * ti / 10, x = tx(tns);
    svg.push('<line x1="' + x + '" y1="0" x2="' + x + '" y2="' + (tlH - 18) + '" stroke="#eee"/><text x="' + x + '" y="' + (tlH - 5) + '" font-size="10" text-anchor="middle">' + ms(tns) + ' ms</text>');
  }
  areas.forEach(function (n, i) { svg.push('<text x="4" y="' + (i * LANE + 15) + '" font-size="11">cma ' + esc(n) + '</text>'); });
  var laneM = areas.length, laneD = areas.length + 1, laneV = areas.length + 2;
  svg.push('<text x="4" y="' + (laneM * LANE + 15) + '" font-size="11">migrations</text>');
  svg.push('<text x="4" y="' + (laneD * LANE + 15) + '" font-size="11">display</text>');
  svg.push('<text x="4" y="' + (laneV * LANE + 15) + '" font-size="11">violations</text>');
  D.allocs.forEach(function (a, i) {
    var lane = areas.indexOf(a[0]), x0 = tx(a[3]), end = a[5] === null ? lastTs : a[5], w = Math.max(2, tx(end) - x0);
    var ok = a[7] !== null, col = !ok ? '#d62728' : (a[10].length ? '#ff7f0e' : '#2ca02c');
    var title = 'cma_alloc ' + a[0] + ' count=' + a[1] + ' align=' + a[2] + '\nstart ' + ms(a[3]) + ' ms, latency ' + (a[5] === null ? 'unfinished' : ms(a[5] - a[3]) + ' ms') +
      '\n' + (ok ? 'pfn ' + hex(a[7]) + ' (' + addr(a[7]) + ')' : 'FAILED errorno ' + a[8]) + '\npages migrated ' + a[9] + (a[10].length ? '\nbusy retries ' + a[10].length + ' (first at pfn ' + hex(a[10][0]) + ')' : '');
    svg.push('<rect class="alloc" data-kind="alloc" data-i="' + i + '" data-pfn="' + (ok ? a[7] : '') + '" data-area="' + esc(a[0]) + '" x="' + x0.toFixed(2) + '" y="' + (lane * LANE + 3) + '" width="' + w.toFixed(2) + '" height="' + (LANE - 8) + '" fill="' + col + '" stroke="#000" stroke-width="0.5"><title>' + esc(title) + '</title></rect>');
  });
  D.releases.forEach(function (r) {
    var lane = areas.indexOf(r[0]), x = tx(r[3]);
    svg.push('<path data-kind="release" d="M' + x.toFixed(2) + ' ' + (lane * LANE + 2) + 'v' + (LANE - 4) + '" stroke="#555" stroke-width="1.5"><title>cma_release ' + esc(r[0]) + ' pfn ' + hex(r[1]) + ' count=' + r[2] + ' at ' + ms(r[3]) + ' ms</title></path>');
  });
  // migration density: pages moved per pixel column
  var dens = new Array(Math.ceil(plotW) + 1).fill(0), dmax = 1;
  for (var m2 = 0; m2 < D.migr.length; m2 += 5) { var c = Math.floor(tx(D.migr[m2]) - LBL); dens[c] = (dens[c] || 0) + 1; dmax = Math.max(dmax, dens[c]); }
  dens.forEach(function (n, c) { if (n) { var h = Math.max(1, (LANE - 6) * n / dmax); svg.push('<rect x="' + (LBL + c) + '" y="' + (laneM * LANE + LANE - 3 - h) + '" width="1" height="' + h + '" fill="#e0306a"/>'); } });
  var prev = null;
  D.display.forEach(function (d) {
    var cam = d[3], kind = cam === null ? null : (prev !== null && cam === prev ? 'repeat' : (prev !== null && cam > prev + 1 ? 'drop' : null));
    if (cam !== null) prev = cam;
    if (kind) svg.push('<rect data-kind="' + kind + '" x="' + tx(d[0]).toFixed(2) + '" y="' + (laneD * LANE + 4) + '" width="2" height="' + (LANE - 8) + '" fill="' + (kind === 'drop' ? '#d62728' : '#ff7f0e') + '"><title>display frame ' + d[2] + ': ' + (kind === 'drop' ? 'camera frames skipped before ' + cam : 'camera frame ' + cam + ' shown again') + '</title></rect>');
  });
  if (D.display.length) svg.push('<text x="' + (LBL + 4) + '" y="' + (laneD * LANE + 15) + '" font-size="10" fill="#666">' + D.display.length + ' frames shown; red = dropped, orange = repeated</text>');
  D.violations.forEach(function (v, i) {
    svg.push('<rect data-kind="violation" data-i="' + i + '" x="' + tx(v[0]).toFixed(2) + '" y="' + (laneV * LANE + 3) + '" width="3" height="' + (LANE - 6) + '" fill="#b00"><title>' + esc(v[2] + ' frame ' + v[1] + ': ' + v[5]) + '</title></rect>');
  });
  svg.push('<line id="tlcursor" x1="0" y1="0" x2="0" y2="' + (tlH - 18) + '" stroke="#00f" stroke-width="1"/>');
  svg.push('</svg>');
  var tl = el('div', { 'class': 'tl', id: 'timeline' }, svg.join(''));
  app.appendChild(tl);
  tl.addEventListener('click', function (ev) {
    var t = ev.target;
    if (t.getAttribute && t.getAttribute('data-kind') === 'alloc') selectAlloc(+t.getAttribute('data-i'));
    else if (t.getAttribute && t.getAttribute('data-kind') === 'violation') setFrameNumber(D.violations[+t.getAttribute('data-i')][1]);
    else {
      var r = tl.querySelector('svg').getBoundingClientRect(), ns = (ev.clientX - r.left - LBL) / plotW * lastTs;
      if (ns >= 0) setFrame(Math.max(0, lowerBound(frames, function (f) { return f.ts; }, ns) - 1));
    }
  });
  var detail = el('div', { id: 'allocdetail', 'class': 'note' }, 'Click an allocation (bar) for its details; click elsewhere on the timeline to go to that time.');
  app.appendChild(detail);

  // allocation table
  var rowsHtml = D.allocs.map(function (a, i) {
    var ok = a[7] !== null;
    return '<tr data-i="' + i + '"' + (ok ? '' : ' class="fail"') + '><td class="num">' + i + '</td><td>' + esc(a[0]) + '</td><td class="num">' + a[1] + '</td><td class="num">' + ms(a[3]) + '</td><td class="num">' +
      (a[5] === null ? '-' : ms(a[5] - a[3])) + '</td><td>' + (ok ? 'ok' : (a[5] === null ? 'unfinished' : 'failed ' + a[8])) + '</td><td class="addr">' + (ok ? hex(a[7]) : '') + '</td><td class="num">' + a[9] + '</td><td class="num">' + a[10].length +
      '</td><td><a class="fr" data-frame="' + a[4] + '">' + a[4] + '</a></td></tr>';
  }).join('');
  var at = el('div', { 'class': 'scroll', id: 'alloctable' }, '<table><tr><th>#</th><th>area</th><th>pages</th><th>start ms</th><th>latency ms</th><th>outcome</th><th>pfn</th><th>migrated</th><th>busy retries</th><th>frame</th></tr>' + rowsHtml + '</table>');
  app.appendChild(at);
  at.addEventListener('click', function (ev) {
    var a = ev.target.closest ? ev.target.closest('tr[data-i]') : null;
    if (a) selectAlloc(+a.getAttribute('data-i'));
  });
  var selAlloc = null;
  function selectAlloc(i) {
    var a = D.allocs[i];
    selAlloc = i;
    at.querySelectorAll('tr.sel').forEach(function (r) { r.classList.remove('sel'); });
    var tr = at.querySelector('tr[data-i="' + i + '"]'); if (tr) tr.classList.add('sel');
    detail.innerHTML = '<b>cma_alloc #' + i + '</b> area ' + esc(a[0]) + ', ' + a[1] + ' pages, align ' + a[2] + '; started ' + ms(a[3]) + ' ms (frame ' + a[4] + '), ' +
      (a[5] === null ? 'never finished' : 'latency ' + ms(a[5] - a[3]) + ' ms') + '; ' + (a[7] !== null ? 'got pfn ' + hex(a[7]) + ' (' + addr(a[7]) + '-' + addr(a[7] + a[1]) + ')' : 'failed (errorno ' + a[8] + ')') +
      '; ' + a[9] + ' pages migrated' + (a[10].length ? '; ' + a[10].length + ' busy retries at pfn ' + a[10].slice(0, 8).map(hex).join(', ') : '') + '.';
    var fr = a[6] !== null ? a[6] : a[4];
    setFrameNumber(fr);
  }

  // ---- counters ------------------------------------------------------------
  app.appendChild(el('h2', null, 'Counters'));
  function chart(id, title, series, yLabel) {
    var W = 1160, H = 170, PL = 60, PW = W - PL - 150;
    var ymax = 4;
    series.forEach(function (s) { s.pts.forEach(function (p) { ymax = Math.max(ymax, p[1]); }); });
    var o = ['<svg id="' + id + '" width="' + W + '" height="' + (H + 20) + '">'];
    o.push('<text x="' + PL + '" y="12" font-size="12" font-weight="600">' + esc(title) + '</text>');
    for (var g = 0; g <= 4; g++) {
      var gy = 18 + (H - 18) * (1 - g / 4);
      o.push('<line x1="' + PL + '" x2="' + (PL + PW) + '" y1="' + gy + '" y2="' + gy + '" stroke="#eee"/><text x="' + (PL - 4) + '" y="' + (gy + 4) + '" font-size="10" text-anchor="end">' + Math.round(ymax * g / 4) + '</text>');
    }
    for (var ti = 0; ti <= 10; ti++) o.push('<text x="' + (PL + PW * ti / 10) + '" y="' + (H + 14) + '" font-size="10" text-anchor="middle">' + ms(lastTs * ti / 10) + '</text>');
    series.forEach(function (s, si) {
      var d = s.pts.map(function (p, k) { return (k ? 'L' : 'M') + (PL + p[0] / lastTs * PW).toFixed(1) + ' ' + (18 + (H - 18) * (1 - p[1] / ymax)).toFixed(1); }).join('');
      if (d) o.push('<path d="' + d + '" fill="none" stroke="' + s.color + '" stroke-width="1.5"/>');
      o.push('<rect x="' + (PL + PW + 12) + '" y="' + (20 + si * 14) + '" width="10" height="10" fill="' + s.color + '"/><text x="' + (PL + PW + 26) + '" y="' + (29 + si * 14) + '" font-size="11">' + esc(s.name) + '</text>');
    });
    o.push('<line class="cursor" x1="0" x2="0" y1="18" y2="' + H + '" stroke="#00f"/>');
    o.push('<text x="' + (PL - 55) + '" y="' + (H / 2) + '" font-size="10">' + esc(yLabel) + '</text></svg>');
    var div = el('div', { 'class': 'chart' }, o.join(''));
    div.dataset.pl = PL; div.dataset.pw = PW;
    app.appendChild(div);
  }
  chart('freechart', 'Free pages per migrate type (sampled at frames and at every allocation start and end)', D.mt_names.map(function (n, i) {
    return { name: n, color: D.mt_colors[i], pts: D.counters.map(function (c) { return [c[0], c[2][i]]; }) };
  }), 'pages');
  var palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
  chart('cmachart', 'CMA used per area (pages allocated)', areas.map(function (n, i) {
    return { name: n, color: palette[i % palette.length], pts: D.counters.map(function (c) { return [c[0], c[4][i] || 0]; }) };
  }), 'pages');
  chart('framechart', 'Display: camera frames dropped and frames repeated (cumulative)', [
    { name: 'dropped', color: '#d62728', pts: dispSeries.map(function (d) { return [d[0], d[1]]; }) },
    { name: 'repeated', color: '#ff7f0e', pts: dispSeries.map(function (d) { return [d[0], d[2]]; }) }
  ], 'frames');

  // ---- violations ------------------------------------------------------------
  app.appendChild(el('h2', null, 'Violations (' + D.violations.length + ')'));
  var vt = el('div', { 'class': 'scroll', id: 'violations' }, D.violations.length ? '<table><tr><th>frame</th><th>time ms</th><th>check</th><th>pfn</th><th>va</th><th>detail</th></tr>' + D.violations.map(function (v) {
    return '<tr><td><a class="fr" data-frame="' + v[1] + '">' + v[1] + '</a></td><td class="num">' + ms(v[0]) + '</td><td>' + esc(v[2]) + '</td><td class="addr">' + (v[3] === null ? '' : hex(v[3])) + '</td><td class="addr">' + (v[4] === null ? '' : hex(v[4])) + '</td><td>' + esc(v[5]) + '</td></tr>';
  }).join('') + '</table>' : '<p class="note">The verifiers found nothing.</p>');
  app.appendChild(vt);
  app.addEventListener('click', function (ev) {
    var t = ev.target;
    if (t.classList && t.classList.contains('fr') && t.hasAttribute('data-frame')) setFrameNumber(+t.getAttribute('data-frame'));
  });

  // ---- frame selection ---------------------------------------------------------
  var cur = 0;
  function setFrame(i) {
    cur = Math.max(0, Math.min(frames.length - 1, i | 0));
    slider.value = cur;
    drawMap(cur);
    var f = frames[cur];
    info.textContent = 'frame ' + f.index + '  t=' + ms(f.ts) + ' ms  (' + (cur + 1) + '/' + frames.length + ')  migrations in frame: ' + migrCount;
    var x = tx(f.ts);
    var c = document.getElementById('tlcursor'); c.setAttribute('x1', x); c.setAttribute('x2', x);
    document.querySelectorAll('.chart').forEach(function (d) {
      var cx = +d.dataset.pl + f.ts / lastTs * +d.dataset.pw, l = d.querySelector('.cursor');
      l.setAttribute('x1', cx); l.setAttribute('x2', cx);
    });
  }
  function setFrameNumber(n) { setFrame(Math.max(0, lowerBound(frames, function (f) { return f.index; }, n) - 1)); }
  slider.addEventListener('input', function () { setFrame(+slider.value); });
  var timer = null;
  playBtn.addEventListener('click', function () {
    if (timer) { clearInterval(timer); timer = null; playBtn.textContent = 'play'; return; }
    playBtn.textContent = 'pause';
    timer = setInterval(function () {
      if (cur >= frames.length - 1) { clearInterval(timer); timer = null; playBtn.textContent = 'play'; return; }
      setFrame(cur + 1);
    }, 100);
  });
  document.addEventListener('keydown', function (ev) {
    if (ev.key === 'ArrowRight') setFrame(cur + 1);
    else if (ev.key === 'ArrowLeft') setFrame(cur - 1);
  });
  setFrame(0);
  window.cmaReport = {
    frames: frames.length,
    setFrame: setFrame,
    frame: function () { return frames[cur].index; },
    allocs: D.allocs.length,
    ready: true
  };
})();
