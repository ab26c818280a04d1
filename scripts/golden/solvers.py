"""Goldens for solvers/: Refiners' diffusion solvers, transcribed into PyTorch.

The maths of Refiners' solvers (finegrain-ai/refiners,
src/refiners/foundationals/latent_diffusion/solvers/: solver.py, dpm.py, ddim.py, euler.py,
lcm.py, and LatentDiffusionModel.init_latents in latent_diffusion/model.py; see the package
comment of solvers/ for the versions read) rewritten as small functions, with PyTorch doing
every operation in the dtype and order Refiners does, so that the Go package can be held to
1e-5. Run with Debian's PyTorch:

    /usr/bin/python3 scripts/golden/solvers.py

It writes
  solvers/testdata/solvers.safetensors  trajectories; metadata "cases" (JSON) describes them
  solvers/testdata/timesteps.json       timesteps for 1..60 steps of each solver, the schedule
                                        facts, and the seeded-noise reference values
and prints the timesteps the issue states as facts.

Each case runs one solver from a fixed initial latent x [1,4,8,8]. The "model" is a fixed
function of the scaled input (an ideal denoiser towards a fixed target plus a little fixed
noise); its outputs are saved, so the Go test feeds exactly the same predicted noise. Per case:
  x        [n+1-first, 1,4,8,8]  x before each step, then the result (x[0] = init_latents output)
  eps      [n-first, ...]        predicted noise given to each step
  scaled   [n-first, ...]        scale_model_input(x, step) (Euler; the others return x itself)
  noise    [n-first, ...]        per-step noise (LCM only; the last step uses none)
  added    [n, ...]              add_noise(image, add_noise_noise, step) for every step (not Euler)
plus the shared tensors image, add_noise_noise, init_noise, the base schedule tables, and
PyTorch's float32 exp at 3001 points (exp/x, exp/y).
"""

import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "solvers", "testdata")

NUM_TRAIN = 1000
INITIAL_RATE = 8.5e-4
FINAL_RATE = 1.2e-2
SHAPE = (1, 4, 8, 8)


# --- Solver base: the "scaled linear" (Refiners: QUADRATIC) schedule, in float32 ----------


def base_schedule(num_train=NUM_TRAIN, initial=INITIAL_RATE, final=FINAL_RATE):
    """betas = linspace(sqrt(initial), sqrt(final), num_train)**2 in float32 (torch's default
    dtype), scale factors 1 - beta, their cumulative product; returns (scale_factors,
    cumulative_scale_factors = sqrt(cumprod), noise_std = sqrt(1 - cumprod))."""
    power = 2
    betas = torch.linspace(initial ** (1 / power), final ** (1 / power), num_train) ** power
    scale_factors = 1 - betas
    cumprod = scale_factors.cumprod(dim=0)
    return scale_factors, torch.sqrt(cumprod), torch.sqrt(1.0 - cumprod)


def safe_log(x):
    return torch.log(torch.maximum(x, torch.tensor(1e-6)))


class Solver:
    """Refiners' Solver base: the base schedule (cumulative scale factors csf, noise std ns),
    the model's input left as it is, and noise added at timesteps[step]."""

    def __init__(self, steps, first_step=0):
        self.steps, self.first_step = steps, first_step
        _, self.csf, self.ns = base_schedule()

    def scale_model_input(self, x, step):
        return x

    def add_noise(self, x, noise, step):
        t = self.timesteps[step]
        return self.csf[t] * x + self.ns[t] * noise


# --- DPM-Solver++ (2M), Refiners' DPMSolver -------------------------------------------------


class DPM(Solver):
    """Constants are computed in float64 from the float32 base schedule, then rounded to
    float32; steps index tables of n+1 entries (the last is sigma at timestep 0)."""

    def __init__(self, steps, first_step=0, last_step_first_order=False, spacing="custom"):
        super().__init__(steps, first_step)
        self.last_step_first_order = last_step_first_order
        csf, ns = self.csf.double(), self.ns.double()
        if spacing == "custom":
            ts = np.linspace(0, NUM_TRAIN - 1, steps + 1).round().astype(int)[1:][::-1].copy()
        elif spacing == "trailing":
            ts = np.arange(NUM_TRAIN - 1, 0, -(NUM_TRAIN // steps))
        else:
            raise ValueError(spacing)
        full_sigmas = ns / csf
        sigmas = torch.tensor(np.interp(ts, np.arange(0, len(full_sigmas)), full_sigmas.numpy()))
        sigmas = torch.cat([sigmas, full_sigmas[0:1]])
        alpha = 1 / torch.sqrt(sigmas**2 + 1)
        std = sigmas * alpha
        lam = safe_log(alpha) - safe_log(std)
        self.timesteps = timesteps_from_sigmas(full_sigmas, sigmas[:-1])
        assert self.timesteps.tolist() == ts.tolist(), (self.timesteps, ts)
        self.sigmas, self.alpha, self.std, self.lam = sigmas.float(), alpha.float(), std.float(), lam.float()
        self.estimates = []

    def add_noise(self, x, noise, step):
        return self.alpha[step] * x + self.std[step] * noise

    def step(self, x, eps, step, noise=None):
        assert self.first_step <= step < self.steps
        est = (x - self.std[step] * eps) / self.alpha[step]
        self.estimates = (self.estimates + [est])[-2:]
        if step == self.first_step or (self.last_step_first_order and step == self.steps - 1):
            delta = self.lam[step] - self.lam[step + 1]
            return (self.std[step + 1] / self.std[step]) * x + (1.0 - torch.exp(delta)) * self.alpha[step + 1] * est
        prev_est, cur_est = self.estimates
        lam_prev, lam_cur, lam_next = self.lam[step - 1], self.lam[step], self.lam[step + 1]
        est_delta = (cur_est - prev_est) / ((lam_cur - lam_prev) / (lam_next - lam_cur))
        factor = 1.0 - torch.exp(lam_cur - lam_next)
        return (
            (self.std[step + 1] / self.std[step]) * x
            + self.alpha[step + 1] * factor * cur_est
            + 0.5 * self.alpha[step + 1] * factor * est_delta
        )


def timesteps_from_sigmas(full_sigmas, sigmas):
    """Refiners' DPMSolver maps each sigma back to a timestep by interpolating log sigma in
    the full table; with the default sigma schedule this returns the timesteps unchanged."""
    log_full = safe_log(full_sigmas)
    out = []
    for sigma in sigmas:
        log_sigma = safe_log(sigma)
        dist = log_sigma - log_full.unsqueeze(1)
        low = (dist >= 0).cumsum(dim=0).argmax(dim=0).clip(max=full_sigmas.size(0) - 2)
        high = low + 1
        w = torch.clamp((log_full[low] - log_sigma) / (log_full[low] - log_full[high]), 0, 1)
        out.append((1 - w) * low + w * high)
    return torch.cat(out).round().int()


# --- DDIM: leading spacing, offset 1 --------------------------------------------------------


class DDIM(Solver):
    def __init__(self, steps, first_step=0):
        super().__init__(steps, first_step)
        self.timesteps = (torch.arange(0, steps, 1) * (NUM_TRAIN // steps) + 1).flip(0)

    def step(self, x, eps, step, noise=None):
        assert self.first_step <= step < self.steps
        t = self.timesteps[step]
        prev_t = self.timesteps[step + 1] if step < self.steps - 1 else torch.tensor([0])
        cur = self.csf[t]
        prev = self.csf[prev_t] if prev_t > 0 else self.csf[0]
        predicted_x = (x - torch.sqrt(1 - cur**2) * eps) / cur
        noise_factor = torch.sqrt(1 - prev**2)
        if step == self.steps - 1:
            noise_factor = 0  # Refiners adds no noise at the last step
        return prev * predicted_x + noise_factor * eps


# --- Euler: linspace (float) timesteps, sigma space ------------------------------------------


class Euler(Solver):
    """Its add_noise is the base Solver's, which indexes the schedule with timesteps[step], a
    float here: PyTorch refuses, so Refiners' Euler cannot add noise (img2img)."""

    def __init__(self, steps, first_step=0):
        super().__init__(steps, first_step)
        self.timesteps = torch.tensor(np.linspace(0, NUM_TRAIN - 1, steps), dtype=torch.float32).flip(0)
        full_sigmas = self.ns / self.csf
        sigmas = torch.tensor(np.interp(self.timesteps.numpy(), np.arange(0, len(full_sigmas)), full_sigmas.numpy()))
        self.sigmas = torch.cat([sigmas, torch.tensor([0.0])]).to(torch.float32)

    @property
    def init_noise_sigma(self):
        return self.sigmas.max()

    def scale_model_input(self, x, step):
        if step == -1:  # init_latents
            return x * self.init_noise_sigma
        return x / ((self.sigmas[step] ** 2 + 1) ** 0.5)

    def step(self, x, eps, step, noise=None):
        assert self.first_step <= step < self.steps
        return x + eps * (self.sigmas[step + 1] - self.sigmas[step])


# --- LCM: timesteps picked among a 50-step trailing DPM, c_skip/c_out, re-noising ------------


class LCM(Solver):
    def __init__(self, steps, first_step=0, num_orig_steps=50):
        assert num_orig_steps >= steps
        super().__init__(steps, first_step)
        self.dpm = DPM(num_orig_steps, spacing="trailing")
        self.indices = torch.floor(torch.linspace(start=0, end=num_orig_steps, steps=steps + 1)[:-1]).int().tolist()
        self.timesteps = self.dpm.timesteps[self.indices]

    def step(self, x, eps, step, noise=None):
        t = self.timesteps[step]
        est = (x - self.ns[t] * eps) / self.csf[t]
        sigma_data = 0.5
        t10 = t * 10
        c_skip = sigma_data**2 / (t10**2 + sigma_data**2)
        c_out = t10 / torch.sqrt(sigma_data**2 + t10**2)
        denoised = c_skip * x + c_out * est
        if step == self.steps - 1:
            return denoised
        return self.dpm.add_noise(denoised, noise, self.indices[step + 1])


def make(name, steps, first_step=0):
    return {"dpm": DPM, "ddim": DDIM, "euler": Euler, "lcm": LCM}[name](steps, first_step=first_step)


def init_latents(solver, noise, image=None):
    """LatentDiffusionModel.init_latents: noise alone, or the image noised to the first step;
    then scale_model_input(x, step=-1) (Euler: times init_noise_sigma; others: unchanged)."""
    x = noise if image is None else solver.add_noise(image, noise, solver.first_step)
    if isinstance(solver, Euler):
        return solver.scale_model_input(x, -1)
    return x


def first_step_for(strength, steps):
    """set_inference_steps: first step = round((1 - strength) * (steps - 1)), Python's round."""
    return round((1 - strength) * (steps - 1))


# --- the synthetic model ---------------------------------------------------------------------

_, BASE_CSF, BASE_NS = base_schedule()


def model(x_in, timestep, target, jitter):
    """An ideal noise predictor towards target at the (rounded) timestep, plus fixed jitter:
    keeps the trajectories in a realistic range."""
    t = int(round(float(timestep)))
    return (x_in - BASE_CSF[t] * target) / BASE_NS[t] + 0.05 * jitter


# --- seeded noise reference (solvers.Noise) ---------------------------------------------------

MASK64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def seeded_noise(seed, n):
    """The documented algorithm of solvers.Noise, independently in Python (glibc's libm)."""
    out = []
    state = seed & MASK64
    while len(out) < n:
        state, a = splitmix64(state)
        state, b = splitmix64(state)
        u1 = ((a >> 11) + 1) * 2.0**-53
        u2 = (b >> 11) * 2.0**-53
        r = math.sqrt(-2.0 * math.log(u1))
        out.append(r * math.cos(2.0 * math.pi * u2))
        out.append(r * math.sin(2.0 * math.pi * u2))
    return np.array(out[:n], dtype=np.float32)


# --- cases -------------------------------------------------------------------------------------


def trajectory(solver, x, target, g, step_noise=False):
    """Runs solver from x, its first step to its last, on the synthetic model towards target,
    drawing each step's jitter (then, with step_noise, the noise of each step but the last)
    from g. Returns the xs (x first), the model's outputs, its scaled inputs and the noises."""
    xs, epss, scaled, noises = [x], [], [], []
    for step in range(solver.first_step, solver.steps):
        x_in = solver.scale_model_input(x, step)
        jitter = torch.randn(SHAPE, generator=g)
        eps = model(x_in, solver.timesteps[step], target, jitter)
        noise = torch.randn(SHAPE, generator=g) if step_noise and step < solver.steps - 1 else None
        x = solver.step(x, eps, step, noise)
        assert x.dtype == torch.float32, (type(solver).__name__, x.dtype)
        xs.append(x)
        epss.append(eps)
        scaled.append(x_in)
        if noise is not None:
            noises.append(noise)
    return xs, epss, scaled, noises


def case_record(key, name, solver, strength, xs, **options):
    """A case's entry in the metadata's "cases" (options after first_step)."""
    return {
        "key": key,
        "solver": name,
        "steps": solver.steps,
        "strength": strength,
        "first_step": solver.first_step,
        **options,
        "timesteps": [float(t) for t in solver.timesteps.tolist()],
        "init_noise_sigma": float(solver.init_noise_sigma) if isinstance(solver, Euler) else 1.0,
        "max_abs_x": float(torch.stack(xs).abs().max()),
    }


def run_case(name, steps, strength, tensors, shared):
    first = first_step_for(strength, steps) if strength is not None else 0
    solver = make(name, steps, first)
    g = torch.Generator().manual_seed(1000 + steps * 10 + first)
    image = shared["image"] if strength is not None else None
    x = init_latents(solver, shared["init_noise"], image)
    xs, epss, scaled, noises = trajectory(solver, x, shared["target"], g, step_noise=name == "lcm")
    key = f"{name}/steps{steps}" + (f"/strength{strength}" if strength is not None else "")
    tensors[key + "/x"] = torch.stack(xs)
    tensors[key + "/eps"] = torch.stack(epss)
    if name == "euler":
        tensors[key + "/scaled"] = torch.stack(scaled)
    else:  # the base Solver's scale_model_input returns x itself
        assert all(a is b for a, b in zip(scaled, xs)), name
    if noises:
        tensors[key + "/noise"] = torch.stack(noises)
    fresh = make(name, steps)
    if name == "euler":
        try:
            fresh.add_noise(shared["image"], shared["add_noise_noise"], 0)
            raise AssertionError("Refiners' Euler add_noise unexpectedly works")
        except IndexError:
            pass
    else:
        tensors[key + "/added"] = torch.stack(
            [fresh.add_noise(shared["image"], shared["add_noise_noise"], s) for s in range(steps)]
        )
    return case_record(key, name, solver, strength, xs)


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    shared = {
        "init_noise": torch.randn(SHAPE, generator=g),
        "image": 0.8 * torch.randn(SHAPE, generator=g),
        "add_noise_noise": torch.randn(SHAPE, generator=g),
        "target": 0.8 * torch.randn(SHAPE, generator=g),
    }
    tensors = {k: v for k, v in shared.items() if k != "target"}
    scale_factors, csf, ns = base_schedule()
    tensors["schedule/scale_factors"] = scale_factors
    tensors["schedule/cumulative_scale_factors"] = csf
    tensors["schedule/noise_std"] = ns
    # PyTorch's float32 exp (SLEEF on CPU, even for a 0-dim tensor), which DPM's steps use.
    exp_x = torch.linspace(-12, 3, 3001)
    tensors["exp/x"] = exp_x
    tensors["exp/y"] = torch.stack([torch.exp(v) for v in exp_x])

    cases = []
    plan = {
        "dpm": [1, 2, 3, 4, 10, 30],
        "ddim": [1, 3, 4, 10, 30],
        "euler": [1, 3, 4, 10, 30],
        "lcm": [1, 2, 3, 4, 8],
    }
    for name, counts in plan.items():
        for steps in counts:
            cases.append(run_case(name, steps, None, tensors, shared))
        for steps, strength in [(10, 0.5), (30, 0.3), (4, 0.75), (8, 0.25)]:
            if name == "euler":
                continue  # Refiners' Euler cannot add_noise (see Euler)
            cases.append(run_case(name, steps, strength, tensors, shared))
    # Euler from a later first step, started from the plain noise (no add_noise).
    cases.append(run_case_euler_late(tensors, shared))

    # DPM with last_step_first_order (Refiners' option for SDXL artifacts).
    cases.append(run_case_dpm_lsfo(tensors, shared))

    st.save(os.path.join(OUT, "solvers.safetensors"), tensors, {"cases": json.dumps(cases)})

    sweep = {
        "dpm": {n: [int(t) for t in DPM(n).timesteps.tolist()] for n in range(1, 61)},
        "ddim": {n: [int(t) for t in DDIM(n).timesteps.tolist()] for n in range(1, 61)},
        "euler": {n: [float(t) for t in Euler(n).timesteps.tolist()] for n in range(1, 61)},
        "euler_init_noise_sigma": {n: float(Euler(n).init_noise_sigma) for n in range(1, 61)},
        "lcm": {n: [int(t) for t in LCM(n).timesteps.tolist()] for n in range(1, 51)},
        "lcm_orig": {
            f"{orig}/{n}": [int(t) for t in LCM(n, num_orig_steps=orig).timesteps.tolist()]
            for orig in (8, 20, 37, 100)
            for n in range(1, orig + 1)
        },
        "first_step": {
            f"{s}/{n}": first_step_for(s, n) for s in (0.0, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9, 1.0) for n in (1, 2, 3, 4, 10, 30, 50)
        },
    }
    noise_ref = {str(seed): seeded_noise(seed, 1024).tolist() for seed in (0, 1, 42, 2**64 - 1)}
    with open(os.path.join(OUT, "timesteps.json"), "w") as f:
        json.dump({"timesteps": sweep, "noise": noise_ref}, f, separators=(",", ":"))
        f.write("\n")

    print("DPMSolver 4 steps:", sweep["dpm"][4])
    print("DDIM 3 steps:     ", sweep["ddim"][3])
    print("Euler 3 steps:    ", sweep["euler"][3])
    print("LCM 4 steps:      ", sweep["lcm"][4])
    print("Euler 30 steps init_noise_sigma:", sweep["euler_init_noise_sigma"][30])
    for c in cases:
        print(f"{c['key']:32s} first={c['first_step']:2d} max|x|={c['max_abs_x']:.3f}")


def run_case_euler_late(tensors, shared):
    steps, first = 10, 4
    solver = Euler(steps, first_step=first)
    g = torch.Generator().manual_seed(7)
    x = solver.scale_model_input(shared["init_noise"], -1)
    xs, epss, scaled, _ = trajectory(solver, x, shared["target"], g)
    key = f"euler/steps{steps}/first{first}"
    tensors[key + "/x"] = torch.stack(xs)
    tensors[key + "/eps"] = torch.stack(epss)
    tensors[key + "/scaled"] = torch.stack(scaled)
    return case_record(key, "euler", solver, None, xs)


def run_case_dpm_lsfo(tensors, shared):
    steps = 10
    solver = DPM(steps, last_step_first_order=True)
    g = torch.Generator().manual_seed(8)
    xs, epss, _, _ = trajectory(solver, shared["init_noise"], shared["target"], g)
    key = f"dpm/steps{steps}/lsfo"
    tensors[key + "/x"] = torch.stack(xs)
    tensors[key + "/eps"] = torch.stack(epss)
    return case_record(key, "dpm", solver, None, xs, last_step_first_order=True)


if __name__ == "__main__":
    main()
