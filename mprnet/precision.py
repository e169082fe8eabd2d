"""Which arithmetic a device runs natively: the rule behind ``train.amp: auto``, and the one check
that refuses bf16 where it would be emulated, for ``mprnet train`` and ``mprnet restore`` alike.

The rule reads what the hardware and torch report, never a timing race, so it gives the same
answer every time on one machine:

* **CUDA**: bf16 is native when ``torch.cuda.is_bf16_supported(including_emulation=False)``,
  i.e. the GPU has bf16 tensor cores (compute capability 8.0 and later: A100, H100/H200, RTX 30xx).
* **CPU**, x86: native when the CPU has bf16 arithmetic units (AVX512-BF16 or AMX-BF16, as
  ``torch.cpu._is_avx512_bf16_supported`` / ``_is_amx_tile_supported`` read them from CPUID), oneDNN
  has bf16 kernels (``torch.ops.mkldnn._is_mkldnn_bf16_supported()``) and nothing restricts torch
  below them: ``ONEDNN_MAX_CPU_ISA`` (or its old name ``DNNL_MAX_CPU_ISA``), when set, must name
  an ISA that includes AVX512_CORE_BF16 (``AVX512_CORE_BF16``, ``AVX512_CORE_FP16``/``AVX10_1_512``,
  ``AVX512_CORE_AMX``/``AVX10_1_512_AMX``, ``..._AMX_FP16``, ``ALL``, ``DEFAULT``; an unknown value
  counts as a restriction), and ATen's vector capability (``ATEN_CPU_CAPABILITY``,
  ``torch.backends.cpu.get_cpu_capability()``) must be AVX512 or higher. So
  ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` makes an AMX machine answer as an AVX2
  laptop does, and time like one.
* **CPU**, other architectures: oneDNN's bf16 check alone (on ARM it requires the BF16 extension).

Elsewhere bf16 would be emulated by conversion to fp32: on a 2-core AMD EPYC (Zen 3, AVX2) one
training step of the demo network took 2.774 s in bf16 against 0.250 s in fp32 (11.1x), and
9.2x for the demo's training under the AVX2 restriction on an AMX Xeon
(``benchmarks/study_speed.py --kinds avx2 --other``).
So an explicit bf16 on such a device is refused (``ConfigError``), by ``check_bf16``, in training
and restoring alike; ``auto`` chooses fp32 there.

Memory layout in training (``train.channels_last: auto``): channels-last (NHWC weights and
activations) on CUDA, on a CPU whose torch and oneDNN kernels reach AVX-512, and for networks
narrower than ``WIDE_N_FEAT`` (64) channels on any CPU; NCHW for wider ones on an AVX2 CPU, where
oneDNN's NHWC training kernels lose to NCHW. ``build_model`` and restoring always run channels-last:
the forward pass is faster so on both kinds. Measured with ``benchmarks/model_step.py --official``
and one training step of the CPU studies' network, 2 threads (1 for the latter), time against the
official NCHW model (fwd+bwd at 128², forward at 256²):

=====================  ===================  ===================  =========================
network (n_feat)       AMX Xeon, fwd+bwd    AVX2-restricted,     AVX2-restricted, forward
                       NHWC / NCHW          fwd+bwd NHWC / NCHW  NHWC / NCHW
=====================  ===================  ===================  =========================
deblurring (96)        0.82 / 0.88          1.17 / 0.96          0.86 / 0.90
denoising (80)         --                   1.00 / 0.93          0.82 / 0.95
deraining (40)         --                   0.86 / 0.91          0.77 / 0.96
CPU studies' (16)      NHWC 0.70 x NCHW     NHWC 0.81 x NCHW     --
=====================  ===================  ===================  =========================

(AVX2-restricted: ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` on the AMX Xeon. On an H200
in bf16, channels-last trained 1.42x (deblurring) and 1.33x (deraining) faster than NCHW, issue 22.)

fp32 on CUDA: PyTorch lets cuDNN run float32 convolutions on TF32 tensor cores by default (10-bit
mantissa inputs). Training keeps that default (as the official code ran on such GPUs); restoring in
fp32 does not: ``ieee_fp32`` turns TF32 off around the forward pass, so an fp32 restore is the
IEEE float32 arithmetic of the official test scripts (written before TF32 existed). On an H200 the
TF32 forward differed from the CPU's by up to 2.6e-4 (of [0, 1]) per pixel (issue 22).
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass

from .errors import ConfigError, DataError

# oneDNN's dnnl_cpu_isa_t bit masks (dnnl_types.h): an ISA includes another when its mask
# contains the other's bits. Native bf16 arithmetic needs AVX512_CORE_BF16 (0xe7).
ONEDNN_ISA_MASKS = {
    "SSE41": 0x1, "AVX": 0x3, "AVX2": 0x7, "AVX2_VNNI": 0xF, "AVX2_VNNI_2": 0x1F,
    "AVX512_CORE": 0x27, "AVX512_CORE_VNNI": 0x67, "AVX512_CORE_BF16": 0xE7,
    "AVX10_1_512": 0x1EF, "AVX512_CORE_FP16": 0x1EF, "AVX10_1_512_AMX": 0xFEF, "AVX512_CORE_AMX": 0xFEF,
    "AVX10_1_512_AMX_FP16": 0x1FEF, "AVX512_CORE_AMX_FP16": 0x1FEF,
}
ONEDNN_BF16_MASK = ONEDNN_ISA_MASKS["AVX512_CORE_BF16"]
ONEDNN_ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# ATen's CPU capabilities that can run bf16 vector code natively (x86).
ATEN_BF16_CAPABILITIES = ("AVX512", "AVX512_VNNI", "AVX512_BF16", "AMX", "AVX512_FP16")
# The memory-layout rule's thresholds: AVX-512 kernels in ATen and oneDNN (module docstring).
ATEN_AVX512_CAPABILITIES = ATEN_BF16_CAPABILITIES
ONEDNN_AVX512_MASK = ONEDNN_ISA_MASKS["AVX512_CORE"]
WIDE_N_FEAT = 64  # from this width on, AVX2 trains MPRNet faster in NCHW (measured at 80 and 96; 40: not)
# Measured slowdown of emulated bf16 training, quoted by the refusal (module docstring).
EMULATED_SLOWDOWN = "11x slower than fp32 on an AVX2 CPU (AMD Zen 3)"

# train.amp values -> the precision names of restore and summary.csv
AMP_PRECISION = {"none": "fp32", "bf16": "bf16", "fp16": "fp16"}


@dataclass(frozen=True)
class Bf16Support:
    """Whether a device computes bf16 natively, and why (one line a log can print)."""

    native: bool
    reason: str


@dataclass(frozen=True)
class CpuFacts:
    """What torch reports about this process's CPU, the inputs of :func:`cpu_bf16_support`."""

    machine: str  # platform.machine()
    units: tuple[str, ...]  # bf16 arithmetic units CPUID reports: "AMX-BF16", "AVX512-BF16"
    onednn_bf16: bool  # torch.ops.mkldnn._is_mkldnn_bf16_supported() (honours ONEDNN_MAX_CPU_ISA)
    aten_capability: str  # torch.backends.cpu.get_cpu_capability() (honours ATEN_CPU_CAPABILITY)

    @property
    def x86(self) -> bool:
        return self.machine.lower() in ("x86_64", "amd64", "i386", "i686")

    @classmethod
    def read(cls) -> "CpuFacts":
        import torch

        units = tuple(label for label, probe in (("AMX-BF16", "_is_amx_tile_supported"),
                                                 ("AVX512-BF16", "_is_avx512_bf16_supported"))
                      if getattr(torch.cpu, probe, lambda: False)())
        onednn = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        return cls(platform.machine(), units, onednn, torch.backends.cpu.get_cpu_capability())


def _onednn_cap(environ, needed: int = ONEDNN_BF16_MASK) -> tuple[str, str] | None:
    """(variable, value) of a oneDNN ISA cap below the ISA mask ``needed`` (default: the bf16
    units), or None when none is set or it allows ``needed``."""
    for name in ONEDNN_ISA_VARIABLES:
        value = environ.get(name, "").strip()
        if not value:
            continue
        key = value.upper()
        if key in ("ALL", "DEFAULT"):
            return None
        mask = ONEDNN_ISA_MASKS.get(key)
        if mask is None or mask & needed != needed:
            return name, value
        return None
    return None


def cpu_bf16_support(facts: CpuFacts | None = None, environ=None) -> Bf16Support:
    """The rule of the module docstring for a CPU (``facts``: this process's by default) under
    the variables of ``environ`` (``os.environ`` by default)."""
    facts = CpuFacts.read() if facts is None else facts
    environ = os.environ if environ is None else environ
    if not facts.x86:
        if facts.onednn_bf16:
            return Bf16Support(True, f"oneDNN's bf16 kernels on {facts.machine}")
        return Bf16Support(False, f"oneDNN has no bf16 kernels on this {facts.machine} CPU")
    if not facts.units:
        return Bf16Support(False, "this CPU has neither AVX512-BF16 nor AMX units")
    units = "/".join(facts.units)
    cap = _onednn_cap(environ)
    if cap is not None:
        return Bf16Support(False, f"{cap[0]}={cap[1]} hides this CPU's {units} units from oneDNN")
    if not facts.onednn_bf16:
        return Bf16Support(False, "oneDNN reports no bf16 kernels (torch built without oneDNN?)")
    if facts.aten_capability not in ATEN_BF16_CAPABILITIES:
        return Bf16Support(False, f"torch's vector kernels are limited to {facts.aten_capability} "
                                  f"(ATEN_CPU_CAPABILITY), below this CPU's {units}")
    return Bf16Support(True, f"this CPU has {units} units")


def bf16_support(device: str) -> Bf16Support:
    """Whether ``device`` (``cpu``, ``cuda``, ``cuda:N``) runs bf16 natively (module docstring)."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        if not torch.cuda.is_available():
            return Bf16Support(False, f"device {device}: no CUDA device is available")
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return Bf16Support(True, f"{torch.cuda.get_device_name(torch.device(device))} has bf16 tensor cores")
        return Bf16Support(False, f"{torch.cuda.get_device_name(torch.device(device))} has no bf16 tensor cores "
                                  "(compute capability below 8.0)")
    if kind == "cpu":
        return cpu_bf16_support()
    return Bf16Support(False, f"device {device}: bf16 runs on CPU or CUDA only")


@dataclass(frozen=True)
class LayoutChoice:
    """Whether MPRNet trains channels-last (NHWC weights and activations) on a device, and why."""

    channels_last: bool
    reason: str


def cpu_layout(n_feat: int, facts: CpuFacts | None = None, environ=None) -> LayoutChoice:
    """The training-layout rule for a CPU (module docstring, "Memory layout") and a network of
    ``n_feat`` channels: channels-last where torch's and oneDNN's kernels reach AVX-512, or where
    the network is narrower than ``WIDE_N_FEAT``; NCHW for wide networks on smaller ISAs.
    ``facts``/``environ`` as for :func:`cpu_bf16_support`."""
    facts = CpuFacts.read() if facts is None else facts
    environ = os.environ if environ is None else environ
    if not facts.x86:
        return LayoutChoice(True, f"channels-last, as on x86 (unmeasured on {facts.machine})")
    cap = _onednn_cap(environ, ONEDNN_AVX512_MASK)
    if cap is None and facts.aten_capability in ATEN_AVX512_CAPABILITIES:
        return LayoutChoice(True, f"channels-last: torch's vector kernels are {facts.aten_capability}")
    below = f"{cap[0]}={cap[1]} keeps oneDNN" if cap else f"torch's vector kernels are {facts.aten_capability},"
    if n_feat < WIDE_N_FEAT:
        return LayoutChoice(True, f"channels-last: {below} below AVX-512, but n_feat {n_feat} < {WIDE_N_FEAT}")
    return LayoutChoice(False, f"NCHW: {below} below AVX-512 and n_feat {n_feat} >= {WIDE_N_FEAT}")


def layout_choice(device: str, n_feat: int) -> LayoutChoice:
    """The memory layout MPRNet of width ``n_feat`` trains fastest in on ``device`` (``cpu``,
    ``cuda``, ``cuda:N``)."""
    import torch

    if torch.device(device).type == "cuda":
        return LayoutChoice(True, "channels-last: cuDNN's NHWC kernels")
    return cpu_layout(n_feat)


def resolve_channels_last(setting, device: str, n_feat: int, *, previous: bool | None = None) -> tuple[bool, str]:
    """``train.channels_last`` (``true``, ``false`` or ``auto``) for ``device`` and a network of
    width ``n_feat``: (channels-last or not, why). ``auto`` keeps ``previous`` (the layout a resumed
    checkpoint trained in), as :func:`resolve_amp` keeps its precision. Raises ``ConfigError`` for
    any other value."""
    if setting == "auto" and isinstance(previous, bool):
        return previous, "kept from the checkpoint this run resumes"
    if isinstance(setting, bool):
        return setting, "train.channels_last: " + ("true" if setting else "false")
    if setting != "auto":
        raise ConfigError(f"train.channels_last: expected true, false or auto, got {setting!r}")
    choice = layout_choice(device, n_feat)
    return choice.channels_last, choice.reason


def check_bf16(device: str, setting: str, instead: str) -> Bf16Support:
    """Refuse bf16 on a ``device`` that would emulate it: ``ConfigError`` naming ``setting`` (the
    key or flag that asked for it), the reason, the measured cost and ``instead`` (the fix)."""
    support = bf16_support(device)
    if not support.native:
        raise ConfigError(f"{setting}: bf16 is not native on {device}: {support.reason}; emulated it runs "
                          f"about {EMULATED_SLOWDOWN}. {instead}")
    return support


def resolve_amp(amp: str, device: str, *, previous: str | None = None) -> tuple[str, str]:
    """The autocast setting a run trains in, and why: ``(amp, reason)`` with ``amp`` one of
    ``none``, ``bf16``, ``fp16``.

    ``amp``: the config's ``train.amp`` (``auto``, ``none``, ``bf16``, ``fp16``). ``auto`` keeps
    ``previous`` (the resolved value a resumed checkpoint trained in, so that one run is trained
    in one precision whatever machine resumes it) and otherwise becomes ``bf16`` where
    ``bf16_support(device)`` is native and ``none`` (fp32) elsewhere. An explicit or kept
    ``bf16`` on a device that would emulate it raises ``ConfigError`` (``check_bf16``); ``fp16``
    needs a GPU (``ConfigError`` on the CPU).
    """
    import torch

    kind = torch.device(device).type
    if amp == "auto" and previous is not None:
        if previous == "bf16":
            check_bf16(device, "train.amp: auto", f"This run was started in bf16 (its checkpoint says so); "
                                                  "resume it on a device with native bf16, or start afresh")
        if previous == "fp16" and kind != "cuda":
            raise ConfigError("train.amp: auto: this run was started in fp16 on a GPU (its checkpoint says so); "
                              "resume it on a GPU")
        return previous, "kept from the checkpoint this run resumes"
    if amp == "auto":
        support = bf16_support(device)
        return ("bf16" if support.native else "none"), support.reason
    if amp == "bf16":
        support = check_bf16(device, "train.amp", "Use train.amp: auto (bf16 where native, fp32 elsewhere) or none")
        return "bf16", support.reason
    if amp == "fp16" and kind != "cuda":
        raise ConfigError("train.amp: fp16 autocast needs a GPU (use auto, bf16 or none on the CPU)")
    return amp, "as configured"


def trained_precision(model_file) -> str:
    """The arithmetic a model file of ``mprnet train`` (``model_final.pt``, ``model_best.pt``) was
    trained in: ``fp32``, ``bf16`` or ``fp16``, from the resolved ``train.amp`` of the config it
    carries. Read with ``torch.load(weights_only=True, mmap=True)``, so the weights are not read.
    Raises ``DataError`` naming the file when it cannot be read or carries no such config."""
    import torch

    try:
        obj = torch.load(model_file, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        raise DataError(f"{model_file}: no such model file") from None
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise DataError(f"{model_file}: not a readable model file ({type(exc).__name__}: {exc})") from None
    config = obj.get("config") if isinstance(obj, dict) else None
    amp = config.get("train", {}).get("amp") if isinstance(config, dict) else None
    if amp not in AMP_PRECISION:
        raise DataError(f"{model_file}: carries no resolved train.amp (found {amp!r}); not a model file of mprnet train")
    return AMP_PRECISION[amp]


@contextlib.contextmanager
def ieee_fp32():
    """Within the block, float32 convolutions (cuDNN) and matrix products (cuBLAS) run in IEEE
    float32, not TF32; the previous settings come back afterwards, also on an error. Affects CUDA
    kernels only (a CPU's float32 is IEEE already), so it is safe everywhere. Uses torch's
    ``fp32_precision`` settings where they exist (torch 2.9+: mixing them with the legacy
    ``allow_tf32`` flags makes torch raise) and the ``allow_tf32`` flags before."""
    import torch

    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        settings = [(conv, "fp32_precision", "ieee"), (torch.backends.cuda.matmul, "fp32_precision", "ieee")]
    else:  # torch < 2.9
        settings = [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]
    saved = [getattr(owner, name) for owner, name, _ in settings]
    for owner, name, value in settings:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for (owner, name, _), value in zip(settings, saved):
            setattr(owner, name, value)
