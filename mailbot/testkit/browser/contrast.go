package browser

import "fmt"

// Contrast is what (*Tab).Contrast measured: how many elements holding
// text it checked, and those below the ratio they need.
type Contrast struct {
	Checked  int      `json:"checked"`
	Failures []string `json:"failures"`
}

// contrastScript measures, for every element that holds text, the
// contrast of its colour against the first opaque background behind it
// (WCAG 2.x relative luminance): 4.5:1, or 3:1 for large text (24 px, or
// 18.66 px bold) when largeAllowed is set (by fmt, from Contrast).
const contrastScript = `(() => {
  const largeAllowed = %t;
  const rgba = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(',').map(parseFloat); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = el => { for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const seen = new Set(), failures = [];
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const n = w.currentNode, el = n.parentElement;
    if (!n.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    const cs = getComputedStyle(el);
    const fg = rgba(cs.color), b = bg(el), l1 = lum(fg), l2 = lum(b);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight, 10) >= 700;
    const need = largeAllowed && (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < need) failures.push(el.tagName + ' "' + n.textContent.trim().slice(0, 40) + '" ' + cs.color + ' on ' +
      'rgb(' + b.r + ',' + b.g + ',' + b.b + '): ' + ratio.toFixed(2));
  }
  return {checked: seen.size, failures};
})()`

// Contrast checks the page's text against WCAG AA: 4.5:1, with the 3:1
// allowance for large text when largeText is set (a web page; mail read
// on small screens gets none).
func (tab *Tab) Contrast(largeText bool) Contrast {
	return Eval[Contrast](tab, fmt.Sprintf(contrastScript, largeText))
}
