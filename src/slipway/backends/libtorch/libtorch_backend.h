// LibTorchBackend: serves TorchScript files (model.pt; platform "pytorch_libtorch", backend
// "pytorch", as Triton names them) with LibTorch on the CPU.
//
// A TorchScript file carries no datatypes or shapes, so the config must list every input and output
// with a name, a datatype and dims; Load refuses a config that leaves one out and names what is
// missing. Inputs go to forward() positionally, in config order (Triton's convention: names such as
// INPUT__0 are allowed, but any name works and only the order counts). forward() returns a tensor,
// or a tuple or list of tensors, one per config output in config order; every output is checked
// against its config datatype and dims (and the batch size when the model batches), and a mismatch
// is an error naming the output, the expected and the actual value. Load also checks forward()'s
// declared arity and, for a tuple return type, its length against the config. A config without
// max_batch_size gets 0: the file cannot say whether dimension 0 is a batch dimension.
//
// Each ModelInstance owns its own clone of the module (Module::clone copies the parameters), so
// instances share no state. Execute runs under c10::InferenceMode. Inputs are copied into tensors
// the call owns: a TorchScript model may modify its inputs in place, and the request's bytes are
// not the model's to change (they may be shared with logs, drift samples or a shadow request).
//
// Threads: LibTorch's intra-op thread count is process-wide (at::set_num_threads). The first Load
// in the process sets it to LoadOptions::intra_op_threads and later loads keep that value (the
// server passes one value to every model); config.intra_op_threads reports the value in force.
// LibTorch parallelises with OpenMP here, which gives every calling thread its own team, so each
// instance runs with that many threads, as with ONNX Runtime. The inter-op pool (torch.jit.fork)
// is limited to one thread at the same time.
// Thread safety: see backend.h; all calls block. LibTorch's headers never leave this folder.
#pragma once

#include <memory>

#include "slipway/backend/backend.h"

namespace slipway::backends::libtorch {

std::unique_ptr<backend::Backend> CreateLibTorchBackend();

}  // namespace slipway::backends::libtorch
