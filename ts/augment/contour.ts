/**
 * Mask -> polygon for YOLO segmentation labels. Every boundary of the mask
 * (the outer boundary of each 8-connected part and of each hole) is traced
 * along pixel edges (crack following), so the vertices are pixel corners
 * (integers in [0, W] x [0, H]) and each ring runs exactly between foreground
 * and background pixels. YOLO rows hold one polygon, so the rings are joined
 * the way Ultralytics' own COCO converter joins several segments
 * (merge_multi_segment): consecutive rings are linked at their closest pair
 * of vertices by a zero-width bridge walked once forward and once back. Filled
 * even-odd (what cv2.fillPoly does), the joined polygon covers exactly the
 * mask: parts, holes and all. Collinear vertices are dropped, so a rectangle
 * gives 4 vertices.
 */

// Headings in image coordinates (y down): E, S, W, N. Left of E is N.
const DX = [1, 0, -1, 0];
const DY = [0, 1, 0, -1];

/**
 * Every boundary ring of a 0/1 mask, in the row-major order of its first edge:
 * outer boundaries of the 8-connected parts run clockwise on screen, holes
 * (4-connected background inside a part) anticlockwise. Each ring is
 * [x0, y0, x1, y1, ...] of its corners.
 */
export function traceBoundaries(mask: Uint8Array, width: number, height: number): number[][] {
  const fg = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] !== 0;
  // Each edge position holds at most one boundary edge (its direction is fixed by which side is foreground).
  const usedH = new Uint8Array(width * (height + 1)); // edge from (x, y) to (x + 1, y)
  const usedV = new Uint8Array((width + 1) * height); // edge from (x, y) to (x, y + 1)
  const rings: number[][] = [];
  for (let y = 0; y <= height; y++) {
    for (let x = 0; x < width; x++) {
      if (usedH[y * width + x]) continue;
      const below = fg(x, y), above = fg(x, y - 1);
      if (below === above) continue;
      // Foreground on the right of the heading: east along a top edge, west along a bottom edge.
      const [sx, sd] = below ? [x, 0] : [x + 1, 2];
      rings.push(traceRing(fg, sx, y, sd, usedH, usedV, width));
    }
  }
  return rings;
}

function traceRing(fg: (x: number, y: number) => boolean, sx: number, sy: number, sd: number, usedH: Uint8Array, usedV: Uint8Array, width: number): number[] {
  const out: number[] = [];
  let x = sx;
  let y = sy;
  let d = sd;
  for (let steps = 0; ; steps++) {
    let nd = d;
    if (steps > 0) {
      // The two pixels ahead of vertex (x, y) for heading d: ahead-left, ahead-right (left first: 8-connected parts).
      const nw = fg(x - 1, y - 1), ne = fg(x, y - 1), sw = fg(x - 1, y), se = fg(x, y);
      let al: boolean, ar: boolean;
      if (d === 0) [al, ar] = [ne, se];
      else if (d === 1) [al, ar] = [se, sw];
      else if (d === 2) [al, ar] = [sw, nw];
      else [al, ar] = [nw, ne];
      nd = al ? (d + 3) % 4 : ar ? d : (d + 1) % 4;
      if (x === sx && y === sy && nd === sd) {
        if (d !== sd) out.push(x, y);
        break;
      }
      if (nd !== d) out.push(x, y);
    }
    d = nd;
    if (d === 0) usedH[y * width + x] = 1;
    else if (d === 2) usedH[y * width + x - 1] = 1;
    else if (d === 1) usedV[y * (width + 1) + x] = 1;
    else usedV[(y - 1) * (width + 1) + x] = 1;
    x += DX[d] as number;
    y += DY[d] as number;
  }
  return out;
}

/** The closest pair of vertices of two rings (squared distance; the first pair on ties). */
function closest(a: number[], b: number[]): [number, number] {
  let best = Infinity;
  let ia = 0;
  let ib = 0;
  for (let i = 0; i < a.length; i += 2) {
    for (let j = 0; j < b.length; j += 2) {
      const dx = (a[i] as number) - (b[j] as number), dy = (a[i + 1] as number) - (b[j + 1] as number);
      const d2 = dx * dx + dy * dy;
      if (d2 < best) [best, ia, ib] = [d2, i / 2, j / 2];
    }
  }
  return [ia, ib];
}

const vertex = (ring: number[], k: number): [number, number] => [ring[2 * k] as number, ring[2 * k + 1] as number];

/**
 * Rings joined into one polygon as Ultralytics' merge_multi_segment joins
 * COCO segments: ring i is linked to ring i + 1 at their closest vertices; the
 * walk goes forward through the first ring (closed), the middle rings from
 * their link in to their link out, the last ring (closed), then back through
 * the rest of each middle ring. Every bridge is walked once each way.
 */
export function joinRings(rings: number[][]): number[] {
  if (rings.length <= 1) return rings[0] ?? [];
  const n = rings.length;
  const links: number[][] = rings.map(() => []);
  for (let i = 1; i < n; i++) {
    const [a, b] = closest(rings[i - 1]!, rings[i]!);
    links[i - 1]!.push(a);
    links[i]!.push(b);
  }
  // Each ring as a closed vertex list starting at its first link (a middle ring reversed when its links are out of order).
  const walks: Array<Array<[number, number]>> = [];
  const spans: number[] = [];
  for (let i = 0; i < n; i++) {
    const ring = rings[i]!;
    const m = ring.length / 2;
    let order = Array.from({ length: m }, (_, k) => k);
    let idx = links[i]!;
    if (idx.length === 2 && idx[0]! > idx[1]!) {
      order = order.reverse();
      idx = [m - 1 - idx[0]!, m - 1 - idx[1]!];
    }
    const start = idx[0]!;
    const rolled = [...order.slice(start), ...order.slice(0, start)].map((k) => vertex(ring, k));
    rolled.push(rolled[0]!);
    walks.push(rolled);
    spans.push(idx.length === 2 ? idx[1]! - idx[0]! : 0);
  }
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) out.push(...(i === 0 || i === n - 1 ? walks[i]! : walks[i]!.slice(0, spans[i]! + 1)));
  for (let i = n - 2; i >= 1; i--) out.push(...walks[i]!.slice(spans[i]!));
  return out.flat();
}

/** The mask as one polygon (pixel-corner vertices): every part and hole, joined; [] for an empty mask. */
export function maskToPolygon(mask: Uint8Array, width: number, height: number): number[] {
  return joinRings(traceBoundaries(mask, width, height));
}
