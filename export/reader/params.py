"""Every number of the reader: the preprocessing table (written into the model's metadata) and the limits."""

MAX_PIXELS = 50_000_000  # larger files are refused: a small PNG can decode to gigabytes (decompression bomb)
BATCH = 256
# Every number of the preprocessing, defined once. export/onnx_export.py writes this dict into the model's
# metadata (`preprocessing`); DigitClassifier reads it back from there (these are the defaults for models
# exported without them), and so does the browser page: one set of numbers, not two copies.
# "of the short side" = a fraction of the working image's shorter side, in pixels after rounding.
PREPROCESSING = {
    "fit": 20,  # the digit's longer side is scaled to 20 px ...
    "canvas": 28,  # ... and pasted on a 28x28 canvas with its centre of mass at the centre
    "work": 320,  # working image: box-reduced by floor(longer side / 320), so its longer side is 320-639 px
    "luma": [0.299, 0.587, 0.114],  # ITU-R 601 luma of RGB (what a JPEG stores as Y)
    "polarity_window": 0.3,  # light ink on dark: the frame is dark and no bright region is this wide (of the short side)
    "polarity_min_side": 64,  # ... (images with a shorter side under 64 px: the dark frame decides alone)
    "sheet_wide": [0.5, 0.75],  # ... bright parts that wide: under 50% light ink, 50-75% try both, over: a sheet
    "paper_window": 0.3,  # paper level: grey closing (max, then min) over a square this wide (of the short side)
    "paper_speck": 3,  # ... bright lines under 3 px wide do not count as paper ...
    "speck_dark": 0.5,  # ... beside a pixel under 0.5 x as bright (JPEG ringing at a sheet's edge on a dark desk)
    "paper_floor": 0.45,  # darkness = (paper - pixel) / max(paper, 0.45): a dark desk does not magnify noise
    "min_ink": 0.25,  # the darkest 3x3 mean must be >= 0.25 (25% darker than its paper), else no digit
    "ink_rel": 0.25,  # ink: darkness above 0.25 x that peak ...
    "line_noise": 0.07,  # rules: pixels of darkness above this ...
    "line_thin": 0.02,  # ... in runs across the rule of at most this (of the short side, at least 4 px) ...
    "line_length": 0.15,  # ... that continue along it for at least this (of the short side, at least 40 px) ...
    "line_tilt": 10,  # ... within +-10 degrees of horizontal or vertical ...
    "line_gap": 5,  # ... bridging gaps of up to 4 px along it (a window of 5 px)
    "line_min": 0.5,  # ruled or grid paper: at least 0.5 x (height + width) such pixels
    "line_percentile": 95,  # ... the rules' darkness: the 95th percentile of those pixels' darkness ...
    "line_contrast": 1.5,  # ... a peak below 1.5 x that is a blank ruled page ...
    "line_margin": 1.4,  # ... else ink must be darker than 1.4 x the rules ...
    "line_max_rel": 0.75,  # ... but that threshold never exceeds 0.75 x the peak
    "min_size": 0.05,  # a digit spans at least 5% of the short side (at least 3 px); smaller marks are specks
    "min_thickness": 0.04,  # ... and its area is at least 0.04 x its longer side squared: thinner are rules, edges, hairs
    "mark_peak": 0.5,  # ... and its darkest pixel is at least half as dark as the darkest such mark's ...
    "mark_ink": 0.3,  # ... and at least this dark (desk grain, shadowed rules of a blank page stay below)
    "border_contact": 0.4,  # a mark touching the frame along more than 0.4 x its box's longer side is desk ...
    "edge": 0.01,  # ... touching = within this of the frame's edge (of the short side, at least 1 px) ...
    "desk_step": 0.75,  # ... or a mark within desk_reach px of a drop in the paper level to below 0.75 x its own (a sheet's edge)
    "desk_reach": 8,  # px
    "desk_ground": 0.1,  # ... or at such a step either way, when the ground around it is this dark (paper is ~0)
    "desk_frame": 2,  # ... a test made when the 2nd percentile of the paper level along the frame is below desk_step x its top
    "unsure_ground": 0.75,  # polarity unsure, light-ink reading: the digit's ground must be >= 0.75 x as dark as the frame's
    "centre_weight": 2.0,  # the digit: most ink / (1 + 2 x distance of its centre from the image centre / short side)
    "merge": 0.25,  # marks whose box reaches into the digit's box grown by 25% of its longer side belong to it ...
    "merge_min": 0.02,  # ... when they hold at least 2% of its ink
}
DEFAULTS = {"labels": [str(d) for d in range(10)], "preprocessing": PREPROCESSING}
