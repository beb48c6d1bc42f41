#!/usr/bin/env Rscript
# Reference values of metafor::escalc for hccmeta's count conversions
# (hccmeta.effects.counts: two_arm_counts, logit_proportion).
#
# Regenerate from the repository root:
#     Rscript validation/escalc/run_escalc.R
# which writes tests/data/escalc_reference.json (read by tests/test_effects_escalc.py).
#
# escalc() is called with its defaults (add = 1/2, to = "only0", drop00 = FALSE,
# vtype = "LS"): 0.5 is added to every cell of a 2x2 table that has a zero cell. The
# tables include the n = 34 study's response and adverse-event counts (sorafenib + TACE
# n = 22 vs sorafenib alone n = 12) and edge cases: zero cells in one arm, in both arms
# (double zero), all patients with the event, and large counts.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[1] else "tests/data/escalc_reference.json"

# ---- two-arm tables: exposed events / n, reference events / n -------------------------
tables <- data.frame(
  label = c(
    "n34 objective response (CR+PR) 13/22 vs 0/12",
    "n34 disease control (CR+PR+SD) 15/22 vs 5/12",
    "n34 grade 3-4 AEs 4/22 vs 2/12",
    "n34 anorexia 5/22 vs 4/12",
    "double zero 0/10 vs 0/10",
    "all events in one arm 10/10 vs 3/10",
    "all events in both arms 22/22 vs 12/12",
    "zero events exposed 0/15 vs 6/14",
    "small counts 1/50 vs 7/45",
    "large counts 150/300 vs 120/310",
    "one patient per arm 1/1 vs 0/1"
  ),
  ai = c(13, 15, 4, 5, 0, 10, 22, 0, 1, 150, 1),
  n1i = c(22, 22, 22, 22, 10, 10, 22, 15, 50, 300, 1),
  ci = c(0, 5, 2, 4, 0, 3, 12, 6, 7, 120, 0),
  n2i = c(12, 12, 12, 12, 10, 10, 12, 14, 45, 310, 1),
  stringsAsFactors = FALSE
)

two_arm <- list()
for (m in c("OR", "RR", "RD")) {
  es <- escalc(measure = m, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = tables)
  two_arm[[m]] <- lapply(seq_len(nrow(tables)), function(i) list(
    label = tables$label[i],
    events_exp = tables$ai[i], n_exp = tables$n1i[i],
    events_ref = tables$ci[i], n_ref = tables$n2i[i],
    yi = as.numeric(es$yi[i]), vi = as.numeric(es$vi[i])
  ))
}

# ---- one arm: events / n -> logit proportion (PLO) -----------------------------------
arms <- data.frame(
  label = c(
    "n34 combination arm response 13/22", "n34 sorafenib arm response 0/12",
    "n34 deaths 30/34", "park2012 completed 30/50", "all events 12/12",
    "biloma 3/22", "one of one 1/1", "large 480/1000"
  ),
  xi = c(13, 0, 30, 30, 12, 3, 1, 480),
  ni = c(22, 12, 34, 50, 12, 22, 1, 1000),
  stringsAsFactors = FALSE
)
es <- escalc(measure = "PLO", xi = xi, ni = ni, data = arms)
one_arm <- lapply(seq_len(nrow(arms)), function(i) list(
  label = arms$label[i], events = arms$xi[i], n = arms$ni[i],
  yi = as.numeric(es$yi[i]), vi = as.numeric(es$vi[i])
))

ref <- list(
  generated_by = "validation/escalc/run_escalc.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  escalc_defaults = list(add = 0.5, to = "only0", drop00 = FALSE, vtype = "LS"),
  two_arm = list(log_or = two_arm[["OR"]], log_rr = two_arm[["RR"]], rd = two_arm[["RD"]]),
  one_arm = list(logit_p = one_arm)
)
dir.create(dirname(out), showWarnings = FALSE, recursive = TRUE)
writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE), out)
cat("wrote", out, "\n")
