#!/usr/bin/env Rscript
# Reference values for hccmeta.models.frequentist.rma: metafor's rma() with REML, DL and
# FE (equal/fixed effects), normal ("z") and Knapp-Hartung ("knha") intervals.
#
# Run from the repository root:
#   Rscript validation/metafor/run_rma.R
# writes tests/data/metafor_rma_reference.json (R and metafor versions recorded in it).
#
# The REML iterations run to a tight threshold (1e-12) so that the reference is the REML
# estimate itself, not an iterate within metafor's default 1e-5 of it.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

datasets <- list()

# Crins et al. (2014): log ORs and variances as printed in SPEC section 9
datasets$crins <- list(
  source = "Crins et al. 2014 (SPEC section 9; bayesmeta's CrinsEtAl2014), log OR",
  yi = c(-2.3097, -0.4595, -2.3026, -1.7579, -1.2585, -2.4179),
  vi = c(0.3594, 0.3096, 0.7750, 0.2078, 0.4122, 2.3373)
)

# BCG vaccine trials (metafor's dat.bcg), log risk ratios: large heterogeneity, k = 13
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
datasets$bcg <- list(
  source = "dat.bcg (Colditz et al. 1994) via escalc('RR'), log RR",
  yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi)
)

# Homogeneous estimates: tau^2 estimated at the boundary 0
datasets$homogeneous <- list(
  source = "constructed: estimates scattered less than their SEs (tau^2 = 0)",
  yi = c(0.10, 0.11, 0.09, 0.10), vi = c(0.09, 0.04, 0.0625, 0.16)
)

# Two studies
datasets$k2 <- list(
  source = "constructed: two studies with visible heterogeneity",
  yi = c(0.2, -0.6), vi = c(0.04, 0.0625)
)

fit_one <- function(d, method, test) {
  fit <- rma(yi = d$yi, vi = d$vi, method = method, test = test,
             control = list(threshold = 1e-12, maxiter = 10000))
  pr <- predict(fit)
  list(
    method = method, test = test, k = fit$k,
    estimate = as.numeric(fit$beta), se = fit$se,
    ci_lower = fit$ci.lb, ci_upper = fit$ci.ub,
    # predict() gives no prediction interval for FE models: NA (null in the JSON)
    pi_lower = if (is.null(pr$pi.lb)) NA else as.numeric(pr$pi.lb),
    pi_upper = if (is.null(pr$pi.ub)) NA else as.numeric(pr$pi.ub),
    tau2 = fit$tau2, i2 = fit$I2, h2 = fit$H2, q = fit$QE, q_p = fit$QEp
  )
}

results <- list()
for (name in names(datasets)) {
  d <- datasets[[name]]
  fits <- list()
  for (method in c("REML", "DL", "FE")) {
    for (test in c("z", "knha")) {
      fits[[paste(method, test, sep = "_")]] <- fit_one(d, method, test)
    }
  }
  results[[name]] <- list(source = d$source, yi = d$yi, vi = d$vi, fits = fits)
}

out <- list(
  generated_by = "validation/metafor/run_rma.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  control = "rma(..., control = list(threshold = 1e-12, maxiter = 10000)); predict() for pi",
  datasets = results
)
dir.create("tests/data", showWarnings = FALSE, recursive = TRUE)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/data/metafor_rma_reference.json")
cat("wrote tests/data/metafor_rma_reference.json\n")
