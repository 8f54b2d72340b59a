"""Probe sizes and the thresholds every check uses (documented in docs/diagnose.md)."""

from __future__ import annotations

# Probe sizes.
DEFAULT_STEPS = 50  # optimizer steps of the training probe
PROBE_SAMPLES = 512  # train images read for the probes (a fixed random sample)
EVAL_SAMPLES = 256  # images the activity and spread measurements look at
OVERFIT_SAMPLES = 32  # the tiny subset the model must be able to memorise
OVERFIT_STEPS_PER_STEP = 6  # the overfit probe runs up to 6 x steps optimizer steps...
OVERFIT_TIME_S = 20.0  # ...or this much CPU time (not wall: the same checklist on a busy machine)

# Input, targets, outputs at init.
INPUT_MAX_FAIL = 10.0  # |x| above this: raw 0..255 pixels
INPUT_MAX_TINY = 0.05  # |x| never above this: scaled twice?
TARGET_RMS_WARN, TARGET_RMS_FAIL = 3.0, 30.0  # RMS of the targets the loss sees
TARGET_STD_TINY = 0.05
PROB_TOL = 1e-3  # rows within this of summing to 1 are probabilities
LOGPROB_TOL = 1e-3  # rows whose exp sums to 1 within this are log-probabilities
INIT_LOSS_RATIO_WARN = 3.0  # cross-entropy at init above 3 x log(K): saturated outputs
OUTPUT_CONSTANT = 1e-6  # outputs' spread over images below this x their size: the image is ignored
RANGE_UNREACHABLE_FAIL = 0.1  # share of targets outside the output's range: FAIL above this

# Recipe read statically.
FROZEN_FAIL = 0.5  # share of the parameters with requires_grad=False: FAIL above, WARN above 0
DECAY_RATIO_WARN, DECAY_RATIO_FAIL = 1.0, 5.0  # weight decay's pull vs the loss gradient (median)
DROPOUT_WARN, DROPOUT_FAIL = 0.6, 0.8  # the largest dropout probability in the forward pass

# Training probe.
GRAD_TINY = 1e-6  # a frozen parameter whose gradient norm is below this: vanishing, not left out
GRAD_VANISH_RATIO = 1e-6  # a parameter's gradient norm below 1e-6 x the largest: vanishing
SATURATING_DEEP = 3  # this many sigmoid/tanh layers in a row make gradients vanish
WEIGHT_FROZEN = 1e-7  # relative weight change below this after the probe: frozen
WEIGHT_SLOW = 1e-3  # median relative weight change below this: the learning rate is tiny
DEAD_LAYER_FAIL, DEAD_ALL_FAIL = 0.95, 0.5  # a layer >= 95 % dead, or half of all units
DEAD_LAYER_WARN, DEAD_ALL_WARN = 0.7, 0.4
DEAD_GROWN_FAIL, DEAD_GROWN_WARN = 0.3, 0.2  # ...of which this many died during the probe (else: at init)
LOSS_FLAT = 1e-4  # relative change of the loss over the probe below this: frozen
LOSS_SLOW = 0.05  # the last steps' loss less than 5 % below the first steps': not falling
LOSS_RISE_NOISE = 2.0  # "rising" only when the rise exceeds this many standard errors of the two
#                        windows' means: a 5-batch mean of a loss that has not moved yet varies by
#                        10 % or more from batch to batch (patches, batch 64), and that is no lr
LOSS_CONSTANT = 0.9  # the last steps' loss above 0.9 x the best constant prediction's: no better
#                      (unless it still falls by LOSS_SLOW over the probe's second half, below the
#                      constant's loss: a slow start, and then collapse is a WARN, not a FAIL)
SPREAD_FAIL = 0.1  # prediction std / target std below this: predicts the mean

# Augmentation: the probe repeated without it.
AUG_MIN_GAIN = 0.2  # without augmentation the model must learn at least this much (R², or
#                     accuracy above the majority class) for the comparison to mean anything
AUG_RATIO_FAIL, AUG_RATIO_WARN = 0.3, 0.6  # learnt with augmentation / learnt without

# Overfit probe and capacity.
OVERFIT_STOP = {"classification": 1.0, "regression": 0.99}  # stop early once the subset is fitted
OVERFIT_PASS = {"classification": 1.0, "regression": 0.9}  # accuracy, R² on the subset
OVERFIT_WARN = {"classification": 0.9, "regression": 0.5}
CORRELATED_OUTPUTS = 0.99  # |correlation| of two predicted columns above this...
TARGETS_INDEPENDENT = 0.9  # ...while the targets' is below this: the outputs share one cause
POSITION_FAMILIES = ("boxes",)  # families whose targets are positions in the image
PARAMS_PER_SAMPLE_WARN = 100.0
