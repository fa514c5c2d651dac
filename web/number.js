// A file's whole number on the page: the reading, and its picture with a box over each digit; picking a
// box shows that digit's probabilities and 28x28 (the caller's onPick).

// r: a read() result with `thumb` (a canvas of the picture) and `size` ([width, height] of the image the
// boxes are in); labels: the model's class names; onPick(digit entry of r.digits).
export function showNumber(view, r, labels, onPick) {
  view.replaceChildren();
  view.hidden = false;
  const head = document.createElement("p");
  head.className = "number";
  const out = document.createElement("output");
  out.dataset.testid = "number";
  out.setAttribute("aria-label", "the number read");
  out.textContent = r.number;
  head.append("Number ", out, ` — ${r.name}: pick a digit for its probabilities`);
  const photo = document.createElement("div");
  photo.className = "photo";
  photo.style.aspectRatio = `${r.size[0]} / ${r.size[1]}`;
  r.thumb.className = "picture";
  photo.append(r.thumb);
  const [w, h] = r.size;
  r.digits.forEach((dg, i) => {
    const box = document.createElement("button");
    box.type = "button";
    box.className = "digit-box";
    box.dataset.testid = `digit-box-${i}`;
    const [x0, y0, x1, y1] = dg.box; // the image's pixels -> % of the picture
    Object.assign(box.style, { left: `${(100 * x0) / w}%`, top: `${(100 * y0) / h}%`, width: `${(100 * (x1 - x0)) / w}%`, height: `${(100 * (y1 - y0)) / h}%` });
    const label = labels[dg.digit] ?? String(dg.digit);
    box.title = `digit ${i + 1}: ${label} (${(dg.confidence * 100).toFixed(1)}%)`;
    box.setAttribute("aria-label", box.title);
    const tag = document.createElement("span");
    tag.textContent = label;
    box.append(tag);
    box.addEventListener("click", () => {
      for (const b of photo.querySelectorAll(".digit-box")) b.classList.toggle("picked", b === box);
      onPick(dg);
    });
    photo.append(box);
  });
  view.append(head, photo);
}
