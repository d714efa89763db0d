/**
 * Mask -> polygon for YOLO segmentation labels: the outer boundary of the
 * mask's largest 8-connected component, traced along pixel edges (crack
 * following), so the vertices are pixel corners (integers in [0, W] x [0, H])
 * and the polygon encloses exactly the component's pixels, holes included:
 * holes and the other components are lost (YOLO rows hold one polygon).
 * Collinear vertices are dropped, so a rectangle gives 4 vertices.
 */
import { largestComponentSync } from '../kernels/mask.js';

// Headings in image coordinates (y down): E, S, W, N. Left of E is N.
const DX = [1, 0, -1, 0];
const DY = [0, 1, 0, -1];

/**
 * Traces the outer boundary of the component holding the first foreground
 * pixel (row-major) of a 0/1 mask; returns [x0, y0, x1, y1, ...] or [] when
 * the mask is empty. Clockwise on screen.
 */
export function traceOuterBoundary(mask: Uint8Array, width: number, height: number): number[] {
  let start = -1;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) {
      start = i;
      break;
    }
  }
  if (start < 0) return [];
  const fg = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] !== 0;
  const sx = start % width;
  const sy = Math.floor(start / width);
  let x = sx;
  let y = sy;
  let d = 0;
  const out: number[] = [];
  for (let steps = 0; ; steps++) {
    // The two pixels ahead of vertex (x, y) for heading d: ahead-left, ahead-right.
    const nw = fg(x - 1, y - 1), ne = fg(x, y - 1), sw = fg(x - 1, y), se = fg(x, y);
    let al: boolean, ar: boolean;
    if (d === 0) [al, ar] = [ne, se];
    else if (d === 1) [al, ar] = [se, sw];
    else if (d === 2) [al, ar] = [sw, nw];
    else [al, ar] = [nw, ne];
    const nd = al ? (d + 3) % 4 : ar ? d : (d + 1) % 4;
    if (steps > 0 && x === sx && y === sy && nd === 0) {
      if (d !== 0) out.push(x, y);
      break;
    }
    if (nd !== d) out.push(x, y);
    d = nd;
    x += DX[d] as number;
    y += DY[d] as number;
  }
  return out;
}

/** The largest component's outer polygon (pixel-corner vertices), or [] for an empty mask. */
export function maskToPolygon(mask: Uint8Array, width: number, height: number): number[] {
  const largest = largestComponentSync({ data: mask, width, height }, { connectivity: 8 });
  if (largest.area === 0) return [];
  return traceOuterBoundary(largest.mask.data, width, height);
}
