//! What the feature extractor needs of a convolutional network: a forward pass over named
//! positions, where a tap can look at (Grad-CAM, pooled features) or replace (attention) the
//! activation, and that can start part-way (a frozen prefix computed once).

use tch::Tensor;

/// Called at every named position with the activation there; returns the tensor that
/// continues.
pub type Tap<'a> = &'a mut dyn FnMut(&str, Tensor) -> Tensor;

/// A convolutional stack with named positions (`relu1`, `stage4`, ...), in order.
pub trait Backbone: std::fmt::Debug + Send {
    /// Runs the stack from position `start` (or from the input when `None`), calling
    /// `tap(position, x)` at every position; the tap returns the tensor that continues
    /// (attention applied, or `x` unchanged). Stops after `last` when given. With a `start`,
    /// `xs` is the output of the layers at `start` before its tap, as a frozen prefix
    /// computed it.
    fn forward_from(
        &self,
        xs: &Tensor,
        start: Option<&str>,
        last: Option<&str>,
        tap: Tap<'_>,
    ) -> Tensor;

    /// [`Backbone::forward_from`] from the input.
    fn forward_with(&self, xs: &Tensor, last: Option<&str>, tap: Tap<'_>) -> Tensor {
        self.forward_from(xs, None, last, tap)
    }
}
