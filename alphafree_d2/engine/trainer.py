"""A detectron2 trainer that runs on CPU or CUDA, with optional mixed precision on both."""

import logging
import time

import torch

from detectron2.engine import SimpleTrainer
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage

__all__ = ["MattingTrainer"]

logger = logging.getLogger(__name__)

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


class MattingTrainer(SimpleTrainer):
    """:class:`SimpleTrainer` plus autocast (detectron2's ``AMPTrainer`` asserts CUDA).

    Args:
        model, data_loader, optimizer: as for :class:`SimpleTrainer`.
        device_type: "cuda" or "cpu", where the model runs.
        amp_enabled: run the forward pass under :func:`torch.autocast`.
        amp_dtype: "float16" (CUDA only, with a gradient scaler) or "bfloat16" (CUDA or CPU, no
            scaler needed). On CPU, float16 autocast is switched off (fp32), said in one log line,
            so a CUDA recipe with AMP also runs unchanged on CPU.
    """

    def __init__(
        self,
        model,
        data_loader,
        optimizer,
        *,
        device_type="cpu",
        amp_enabled=False,
        amp_dtype="float16",
        gather_metric_period=1,
    ):
        super().__init__(model, data_loader, optimizer, gather_metric_period=gather_metric_period)
        if amp_dtype not in _DTYPES:
            raise ValueError(f"amp dtype must be one of {sorted(_DTYPES)}, got {amp_dtype!r}")
        if amp_enabled and device_type == "cpu" and amp_dtype == "float16":
            logger.info(
                "train.amp: float16 autocast is for CUDA, so this CPU run trains in float32 "
                "(the same results, without the speed-up); train.amp.dtype=bfloat16 gives "
                "bfloat16 autocast on CPU"
            )
            amp_enabled = False
        self.device_type = device_type
        self.amp_enabled = amp_enabled
        self.amp_dtype = _DTYPES[amp_dtype]
        use_scaler = amp_enabled and device_type == "cuda" and self.amp_dtype == torch.float16
        self.grad_scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    def run_step(self):
        assert self.model.training, "[MattingTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        with torch.autocast(self.device_type, dtype=self.amp_dtype, enabled=self.amp_enabled):
            loss_dict = self.model(data)
        losses = sum(loss_dict.values())

        self.optimizer.zero_grad()
        if self.grad_scaler is not None:
            self.grad_scaler.scale(losses).backward()
        else:
            losses.backward()
        self.after_backward()
        self._write_metrics(loss_dict, data_time)
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()

    def _write_metrics(self, loss_dict, data_time, prefix="", iter=None):
        super()._write_metrics(loss_dict, data_time, prefix, iter)
        # detectron2 logs the terms only when there are several; a single term is the total.
        iter = self.iter if iter is None else iter
        if len(loss_dict) == 1 and (iter + 1) % self.gather_metric_period == 0:
            if comm.is_main_process():
                storage = get_event_storage()
                (name,) = loss_dict
                total = storage.latest()[f"{prefix}total_loss"][0]
                storage.put_scalar(name, total, cur_iter=iter)

    def state_dict(self):
        ret = super().state_dict()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
