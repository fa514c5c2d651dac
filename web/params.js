// The page's numbers: the twin of export/reader/params.py.
//
// DEFAULTS.preprocessing is the reader's PREPROCESSING, the only copy here: the fallback for the numbers
// a model's metadata lacks (every exported model carries its own, and the page reads them from it).

// params.py MAX_PIXELS (a limit, not a preprocessing number).
export const MAX_PIXELS = 50_000_000; // larger images are refused (decompression bombs)
// params.py BATCH: inputs per session.run.
export const BATCH = 256;

// params.py PREPROCESSING and DEFAULTS: the fallback for numbers a model's metadata lacks.
export const DEFAULTS = {
  labels: [...Array(10).keys()].map(String),
  preprocessing: {
    fit: 20, canvas: 28, stroke: 2.3, stroke_max: 3.0, thin: 0.8, work: 320, luma: [0.299, 0.587, 0.114],
    polarity_window: 0.3, polarity_min_side: 64, sheet_wide: [0.5, 0.75],
    paper_window: 0.3, paper_core: 0.5, core_max: 0.5, core_ring: 3, paper_speck: 3, speck_dark: 0.5, paper_floor: 0.45, min_ink: 0.25, ink_rel: 0.25, noise_k: 5,
    line_noise: 0.07, line_thin: 0.02, line_length: 0.15, line_tilt: 10, line_gap: 5, line_span: 0.4, line_family: 3,
    line_min: 0.5, line_percentile: 95, line_contrast: 1.5, line_margin: 1.4, line_max_rel: 0.75,
    min_size: 0.05, min_thickness: 0.01, mark_peak: 0.5, mark_ink: 0.3, mark_contrast: 0.15, border_contact: 0.4, cut_contact: 0.85, cut_contrast: 0.3, edge: 0.01,
    desk_drop: 0.65, desk_step: 0.75, desk_edge: 0.5, desk_reach: 8, desk_ground: 0.1, desk_frame: 2, unsure_ground: 0.75, centre_weight: 2.0, merge: 0.25, merge_min: 0.02,
    // a whole number (segment.js)
    line_overlap: 0.3, part_rel: 0.6, part_reach: 0.5, part_gap: 0.15, join_overlap: 0.6, join_try: 0.4, speck_rel: 0.4, flat_rel: 0.3, flat_long: 2.0, one_wide: 1.4, turn_tall: 1.5, turn_merged: 2.0, turn_unsure: 0.8, split_try: 0.4, split_margin: 0.2, split_slants: [-0.3, -0.15, 0.0, 0.15, 0.3], split_tries: 16, split_deep: 1.0, split_apart: 2, split_at: 1.11, split_evidence: 1.5, read_shift: 1, second_look: 1.0, second_look_area: 0.5,
  },
};
