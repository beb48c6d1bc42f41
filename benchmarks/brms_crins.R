# The yardstick of SPEC section 8: brms (Stan) fitting the Crins et al. random-effects
# model (log ORs, mu ~ N(0, 4^2), tau ~ HalfNormal(0.5)), 4 chains x 1000 draws after
# 1000 warm-up. Run as `Rscript benchmarks/brms_crins.R` with Debian's r-cran-brms; it
# prints the compile+sample time of the first fit and the time of a refit
# (update() with new data, no recompilation).
suppressPackageStartupMessages(library(brms))
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
d <- read.csv(file.path(here, "data", "crins.csv"))
d$sei <- sqrt(d$vi)
priors <- c(prior(normal(0, 4), class = Intercept), prior(normal(0, 0.5), class = sd))
t0 <- Sys.time()
fit <- brm(yi | se(sei) ~ 1 + (1 | study), data = d, prior = priors,
           chains = 4, iter = 2000, warmup = 1000, cores = 2, seed = 1, refresh = 0)
t1 <- Sys.time()
d2 <- d
d2$yi <- d$yi + 0.1
fit2 <- update(fit, newdata = d2, recompile = FALSE, refresh = 0, seed = 2)
t2 <- Sys.time()
s <- fixef(fit)
cat(sprintf("brms %s, rstan %s\n", packageVersion("brms"), packageVersion("rstan")))
cat(sprintf("mu posterior mean %.4f\n", s[1, "Estimate"]))
cat(sprintf("first fit (compile + sample): %.1f s\n", as.numeric(difftime(t1, t0, units = "secs"))))
cat(sprintf("refit without recompiling: %.1f s\n", as.numeric(difftime(t2, t1, units = "secs"))))
