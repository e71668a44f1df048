// XgboostBackend: serves XGBoost boosters (model.json, or model.ubj named by the config's
// default_model_filename; platform and backend "xgboost") through XGBoost's C API.
//
// The model takes one FP32 input [batch, n_features] (n_features read from the booster) and gives
// one FP32 output: [batch] for regression, binary and multi:softmax objectives, [batch, n] for
// multi:softprob and multi-target models; the shape is learnt at load by predicting one row. Load
// completes the config's input and output from the booster (default names "features" and
// "predictions") and refuses a config that contradicts it, naming the tensor and both values.
// Predictions are XGBoost's normal ones (transformed by the objective, all trees): bit for bit
// what Booster.predict(DMatrix(x)) gives in Python for the same float32 rows.
//
// One booster per ModelInstance, loaded from the file by CreateInstance: XGBoost hands back
// predictions in buffers its booster owns and does not promise concurrent predictions on one
// booster, so a handle is never shared between instances (and each instance runs one call at a
// time, see backend.h). Each booster predicts with nthread = LoadOptions::intra_op_threads.
// Thread safety: see backend.h; all calls block. XGBoost's headers never leave this folder.
#pragma once

#include <cstdint>
#include <memory>

#include "slipway/backend/backend.h"

namespace slipway::backends::xgboost {

struct XgboostBackendOptions {
  // max_batch_size given to a model whose config does not set one (a booster takes any number of
  // rows).
  int64_t default_max_batch_size = 64;
};

std::unique_ptr<backend::Backend> CreateXgboostBackend(XgboostBackendOptions options);

}  // namespace slipway::backends::xgboost
