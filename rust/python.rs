//! Thin PyO3 bindings: convert arguments, check what the core cannot name, release the
//! GIL, call the core, convert the result. No kernel logic lives here; argument
//! validation with user-facing messages lives in `pybinscale/kernels.py`, and these
//! functions are private (`pybinscale._core`).

use numpy::ndarray::{Array1, Array2};
use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyReadonlyArray2,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::bits::{self, BitMatrix, Matrix, PackedBits, Real};
use crate::error::{Error, Zeroable};
use crate::network::{self, Hidden, Network};
use crate::{gram, matmul, ntk, parallel, quantize, simd};

/// A core error as a Python exception, `name` being the argument it concerns.
fn to_py_err(error: Error, name: &str) -> PyErr {
    match error {
        Error::NonFinite { row, col } => PyValueError::new_err(format!(
            "{name} contains NaN or infinity at row {row}, column {col}; \
             remove or impute non-finite values first"
        )),
        Error::TooLarge { .. } => PyMemoryError::new_err(format!("{name}: {error}")),
        other => PyValueError::new_err(format!("{name}: {other}")),
    }
}

/// The float type of the real arrays a call works on; every real argument of one call
/// has the float type of its first (`kernels.py` casts them to one).
#[derive(Clone, Copy)]
enum Float {
    F32,
    F64,
}

impl Float {
    fn of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self> {
        let array = obj.cast::<PyUntypedArray>().map_err(|_| real_type_error(name))?;
        let dtype = array.dtype();
        if array.ndim() != 2 {
            Err(real_type_error(name))
        } else if dtype.is_equiv_to(&numpy::dtype::<f32>(obj.py())) {
            Ok(Float::F32)
        } else if dtype.is_equiv_to(&numpy::dtype::<f64>(obj.py())) {
            Ok(Float::F64)
        } else {
            Err(real_type_error(name))
        }
    }
}

fn real_type_error(name: &str) -> PyErr {
    PyTypeError::new_err(format!("{name}: expected a 2-D float32 or float64 numpy array"))
}

/// `obj` borrowed read-only as a 2-D array of `T`.
fn readonly<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray2<'py, T>> {
    obj.extract().map_err(|_| {
        PyTypeError::new_err(format!("{name}: expected a 2-D array of the same float dtype as X"))
    })
}

/// The core's view of a 2-D array whose rows are contiguous and evenly spaced.
fn matrix_view<'a, T: Element + Copy>(
    array: &'a PyReadonlyArray2<'_, T>,
    name: &str,
) -> PyResult<Matrix<'a, T>> {
    let view = array.as_array();
    let (rows, cols) = view.dim();
    if rows == 0 || cols == 0 {
        return Matrix::new(&[], rows, cols, cols).map_err(|e| to_py_err(e, name));
    }
    let strides = view.strides();
    let row_stride = if rows == 1 { cols as isize } else { strides[0] };
    if (cols > 1 && strides[1] != 1) || row_stride < cols as isize {
        return Err(PyValueError::new_err(format!(
            "{name}: rows must be contiguous and in order (pass np.ascontiguousarray({name}))"
        )));
    }
    let row_stride = row_stride as usize;
    let len = (rows - 1) * row_stride + cols;
    // SAFETY: numpy guarantees that an array with this shape and these non-negative
    // strides addresses elements `ptr + i * row_stride + j` for i < rows, j < cols, the
    // last of which is element `len - 1`; the read-only borrow `array` outlives the slice.
    let data = unsafe { std::slice::from_raw_parts(view.as_ptr(), len) };
    Matrix::new(data, rows, cols, row_stride).map_err(|e| to_py_err(e, name))
}

/// The core's view of packed words (`rows` x `stride`, C-contiguous) holding `cols` bits a row.
fn bit_view<'a>(
    words: &'a PyReadonlyArray2<'_, u64>,
    cols: usize,
    name: &str,
) -> PyResult<BitMatrix<'a>> {
    let shape = words.shape();
    let (rows, stride) = (shape[0], shape[1]);
    let data = words
        .as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name}: packed words must be C-contiguous")))?;
    BitMatrix::new(data, rows, cols, stride).map_err(|e| to_py_err(e, name))
}

/// The core's view of `array`, checked to hold no NaN or infinity: for calls with
/// several real arguments, so that the error names the one at fault.
fn finite_view<'a, T: Real + Element>(
    array: &'a PyReadonlyArray2<'_, T>,
    name: &str,
) -> PyResult<Matrix<'a, T>> {
    let matrix = matrix_view(array, name)?;
    matrix.check_finite().map_err(|e| to_py_err(e, name))?;
    Ok(matrix)
}

fn to_array2<T: Element>(
    py: Python<'_>,
    data: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'_, PyArray2<T>>> {
    let array = Array2::from_shape_vec((rows, cols), data)
        .map_err(|e| PyRuntimeError::new_err(format!("result has the wrong size: {e}")))?;
    Ok(array.into_pyarray(py))
}

fn packed_to_py(py: Python<'_>, packed: PackedBits) -> PyResult<Bound<'_, PyArray2<u64>>> {
    let (rows, stride) = (packed.rows(), packed.stride());
    to_array2(py, packed.into_words(), rows, stride)
}

#[pyfunction]
fn pack_signs<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    match Float::of(a, name)? {
        Float::F32 => pack_signs_typed::<f32>(py, a, name),
        Float::F64 => pack_signs_typed::<f64>(py, a, name),
    }
}

fn pack_signs_typed<'py, T: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    let array = readonly::<T>(a, name)?;
    let matrix = matrix_view(&array, name)?;
    let packed = py.detach(|| bits::pack_signs(matrix)).map_err(|e| to_py_err(e, name))?;
    packed_to_py(py, packed)
}

#[pyfunction]
fn check_packed(words: PyReadonlyArray2<'_, u64>, cols: usize, name: &str) -> PyResult<()> {
    bit_view(&words, cols, name).map(|_| ())
}

#[pyfunction]
fn unpack_signs<'py>(
    py: Python<'py>,
    words: PyReadonlyArray2<'py, u64>,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<i8>>> {
    let view = bit_view(&words, cols, "P")?;
    let signs = py.detach(|| bits::unpack_signs(view)).map_err(|e| to_py_err(e, "P"))?;
    to_array2(py, signs, view.rows(), cols)
}

#[pyfunction]
fn sign_matmul<'py>(
    py: Python<'py>,
    a_words: PyReadonlyArray2<'py, u64>,
    b_words: PyReadonlyArray2<'py, u64>,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<i32>>> {
    let a = bit_view(&a_words, cols, "A")?;
    let b = bit_view(&b_words, cols, "B")?;
    let product =
        py.detach(|| matmul::sign_product(a, b)).map_err(|e| to_py_err(e, "sign_matmul"))?;
    to_array2(py, product, a.rows(), b.rows())
}

#[pyfunction]
#[pyo3(signature = (p_words, q_words, cols))]
fn coactivation_counts<'py>(
    py: Python<'py>,
    p_words: PyReadonlyArray2<'py, u64>,
    q_words: Option<PyReadonlyArray2<'py, u64>>,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<i32>>> {
    let p = bit_view(&p_words, cols, "P")?;
    let q = q_words.as_ref().map(|words| bit_view(words, cols, "Q")).transpose()?;
    let counts =
        py.detach(|| matmul::and_counts(p, q)).map_err(|e| to_py_err(e, "coactivation_counts"))?;
    to_array2(py, counts, p.rows(), q.map_or(p.rows(), |q| q.rows()))
}

/// Integers and per-row scales of quantised activations.
type QuantizedArrays<'py> = (Bound<'py, PyArray2<i8>>, Bound<'py, PyArray1<f64>>);

#[pyfunction]
fn quantize_activations<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    bits: usize,
) -> PyResult<QuantizedArrays<'py>> {
    match Float::of(x, "X")? {
        Float::F32 => quantize_activations_typed::<f32>(py, x, bits),
        Float::F64 => quantize_activations_typed::<f64>(py, x, bits),
    }
}

fn quantize_activations_typed<'py, T: quantize::Quantizable + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    bits: usize,
) -> PyResult<QuantizedArrays<'py>> {
    let array = readonly::<T>(x, "X")?;
    let matrix = matrix_view(&array, "X")?;
    let quantized =
        py.detach(|| quantize::quantize(matrix, bits)).map_err(|e| to_py_err(e, "X"))?;
    Ok((
        to_array2(py, quantized.values, matrix.rows(), matrix.cols())?,
        Array1::from(quantized.scales).into_pyarray(py),
    ))
}

#[pyfunction]
fn quantized_matmul<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w_words: PyReadonlyArray2<'py, u64>,
    cols: usize,
    bits: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let w = bit_view(&w_words, cols, "W")?;
    Ok(match Float::of(x, "X")? {
        Float::F32 => quantized_matmul_typed(py, x, w, bits, |v| v as f32)?.into_any(),
        Float::F64 => quantized_matmul_typed(py, x, w, bits, |v| v)?.into_any(),
    })
}

fn quantized_matmul_typed<'py, T: quantize::Quantizable + Zeroable + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: BitMatrix<'_>,
    bits: usize,
    convert: impl Fn(f64) -> T + Sync + Send,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let array = readonly::<T>(x, "X")?;
    let matrix = matrix_view(&array, "X")?;
    let product = py
        .detach(|| quantize::quantized_product(matrix, w, bits, convert))
        .map_err(|e| to_py_err(e, "X"))?;
    to_array2(py, product, matrix.rows(), w.rows())
}

#[pyfunction]
fn activation_patterns<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    quantized: bool,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    match Float::of(x, "X")? {
        Float::F32 => activation_patterns_typed::<f32>(py, x, w, quantized),
        Float::F64 => activation_patterns_typed::<f64>(py, x, w, quantized),
    }
}

fn activation_patterns_typed<'py, T: Real + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    quantized: bool,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    let (x_array, w_array) = (readonly::<T>(x, "X")?, readonly::<T>(w, "W")?);
    let (xm, wm) = (finite_view(&x_array, "X")?, finite_view(&w_array, "W")?);
    let packed = py
        .detach(|| gram::activation_patterns(xm, wm, quantized))
        .map_err(|e| to_py_err(e, "activation_patterns"))?;
    packed_to_py(py, packed)
}

#[pyfunction]
#[pyo3(signature = (x, w, z, kappa, quantized))]
fn ntk_gram<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    z: Option<&Bound<'py, PyAny>>,
    kappa: f64,
    quantized: bool,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    match Float::of(x, "X")? {
        Float::F32 => ntk_gram_typed::<f32>(py, x, w, z, kappa, quantized),
        Float::F64 => ntk_gram_typed::<f64>(py, x, w, z, kappa, quantized),
    }
}

fn ntk_gram_typed<'py, T: Real + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    z: Option<&Bound<'py, PyAny>>,
    kappa: f64,
    quantized: bool,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (x_array, w_array) = (readonly::<T>(x, "X")?, readonly::<T>(w, "W")?);
    let z_array = z.map(|z| readonly::<T>(z, "Z")).transpose()?;
    let (xm, wm) = (finite_view(&x_array, "X")?, finite_view(&w_array, "W")?);
    let zm = z_array.as_ref().map(|z| finite_view(z, "Z")).transpose()?;
    let gram = py
        .detach(|| gram::ntk_gram(xm, wm, zm, kappa, quantized))
        .map_err(|e| to_py_err(e, "ntk_gram"))?;
    to_array2(py, gram, xm.rows(), zm.map_or(xm.rows(), |zm| zm.rows()))
}

#[pyfunction]
#[pyo3(signature = (x, z, kappa, output_layer))]
fn ntk_limit<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    z: Option<&Bound<'py, PyAny>>,
    kappa: f64,
    output_layer: bool,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    match Float::of(x, "X")? {
        Float::F32 => ntk_limit_typed::<f32>(py, x, z, kappa, output_layer),
        Float::F64 => ntk_limit_typed::<f64>(py, x, z, kappa, output_layer),
    }
}

fn ntk_limit_typed<'py, T: Real + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    z: Option<&Bound<'py, PyAny>>,
    kappa: f64,
    output_layer: bool,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let x_array = readonly::<T>(x, "X")?;
    let z_array = z.map(|z| readonly::<T>(z, "Z")).transpose()?;
    let xm = finite_view(&x_array, "X")?;
    let zm = z_array.as_ref().map(|z| finite_view(z, "Z")).transpose()?;
    let kernel = py
        .detach(|| ntk::arccos_ntk(xm, zm, kappa, output_layer))
        .map_err(|e| to_py_err(e, "ntk_limit"))?;
    to_array2(py, kernel, xm.rows(), zm.map_or(xm.rows(), |zm| zm.rows()))
}

/// `obj` borrowed read-only as a 2-D float64 array: a `ValueError` for an array of
/// another shape, a `TypeError` for anything else.
fn float64_array<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArray2<'py, f64>> {
    if let Ok(array) = obj.cast::<PyUntypedArray>() {
        if array.ndim() != 2 {
            return Err(PyValueError::new_err(format!(
                "{name}: expected a 2-D array, got {}-D with shape {:?}",
                array.ndim(),
                array.shape()
            )));
        }
    }
    obj.extract()
        .map_err(|_| PyTypeError::new_err(format!("{name}: expected a 2-D float64 numpy array")))
}

/// `ValueError` naming `name` unless it has `expected` `what` (rows, columns), the number
/// `other` has, `reason` saying why they must match.
fn check_count(
    name: &str,
    count: usize,
    what: &str,
    other: &str,
    expected: usize,
    reason: &str,
) -> PyResult<()> {
    if count == expected {
        return Ok(());
    }
    Err(PyValueError::new_err(format!(
        "{name}: has {count} {what} but {other} has {expected}; expected {reason}"
    )))
}

fn check_finite_scalar(value: f64, name: &str) -> PyResult<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!("{name}: expected a finite number, got {value}")))
    }
}

/// The checks of a network's shapes the core can only report without argument names.
fn check_network(
    x: &Matrix<'_, f64>,
    hidden_rows: usize,
    hidden_cols: usize,
    output: &Matrix<'_, f64>,
    scale: f64,
) -> PyResult<()> {
    check_count("hidden", hidden_cols, "columns", "X", x.cols(), "one per feature")?;
    check_count("output", output.rows(), "rows", "hidden", hidden_rows, "one per neuron")?;
    check_finite_scalar(scale, "scale")
}

/// Outputs, loss, hidden-weight gradient and (if asked) output-weight gradient.
type StepArrays<'py> =
    (Bound<'py, PyArray2<f64>>, f64, Bound<'py, PyArray2<f64>>, Option<Bound<'py, PyArray2<f64>>>);

#[pyfunction]
#[pyo3(signature = (x, y, hidden, output, scale, output_grad, binarize = None))]
#[allow(clippy::too_many_arguments)]
fn train_step<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    hidden: &Bound<'py, PyAny>,
    output: &Bound<'py, PyAny>,
    scale: f64,
    output_grad: bool,
    binarize: Option<(f64, f64)>,
) -> PyResult<StepArrays<'py>> {
    let (x_array, y_array) = (float64_array(x, "X")?, float64_array(y, "Y")?);
    let (v_array, a_array) = (float64_array(hidden, "hidden")?, float64_array(output, "output")?);
    let (xm, ym) = (finite_view(&x_array, "X")?, finite_view(&y_array, "Y")?);
    let (vm, am) = (finite_view(&v_array, "hidden")?, finite_view(&a_array, "output")?);
    check_network(&xm, vm.rows(), vm.cols(), &am, scale)?;
    check_count("Y", ym.rows(), "rows", "X", xm.rows(), "one per sample")?;
    check_count("Y", ym.cols(), "columns", "output", am.cols(), "one per output")?;
    if xm.rows() == 0 {
        return Err(PyValueError::new_err("X: has no rows; the loss needs at least one sample"));
    }
    let hidden = dense_hidden(vm, binarize);
    let step = py
        .detach(|| network::train_step(xm, ym, hidden, am, scale, output_grad))
        .map_err(|e| to_py_err(e, "train_step"))?;
    let (n, m, k) = (xm.rows(), vm.rows(), am.cols());
    let grad_output = step.grad_output.map(|grad| to_array2(py, grad, m, k)).transpose()?;
    Ok((
        to_array2(py, step.outputs, n, k)?,
        step.loss,
        to_array2(py, step.grad_hidden, m, xm.cols())?,
        grad_output,
    ))
}

#[pyfunction]
#[pyo3(signature = (x, hidden, output, scale, hidden_scale, binarize = None))]
fn network_outputs<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    hidden: &Bound<'py, PyAny>,
    output: &Bound<'py, PyAny>,
    scale: f64,
    hidden_scale: f64,
    binarize: Option<(f64, f64)>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let v_array = float64_array(hidden, "hidden")?;
    let vm = finite_view(&v_array, "hidden")?;
    outputs_of(py, x, dense_hidden(vm, binarize), output, scale, hidden_scale)
}

/// Real hidden weights as given, or binarised as they are read (see [`Hidden`]).
fn dense_hidden(latent: Matrix<'_, f64>, binarize: Option<(f64, f64)>) -> Hidden<'_> {
    match binarize {
        Some((offset, scale)) => Hidden::Binarized { latent, offset, scale },
        None => Hidden::Dense(latent),
    }
}

#[pyfunction]
fn packed_network_outputs<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    hidden_words: PyReadonlyArray2<'py, u64>,
    hidden_cols: usize,
    output: &Bound<'py, PyAny>,
    scale: f64,
    hidden_scale: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let bits = bit_view(&hidden_words, hidden_cols, "hidden")?;
    outputs_of(py, x, Hidden::Signs(bits), output, scale, hidden_scale)
}

fn outputs_of<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    hidden: Hidden<'_>,
    output: &Bound<'py, PyAny>,
    scale: f64,
    hidden_scale: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (x_array, a_array) = (float64_array(x, "X")?, float64_array(output, "output")?);
    let (xm, am) = (finite_view(&x_array, "X")?, finite_view(&a_array, "output")?);
    check_network(&xm, hidden.rows(), hidden.cols(), &am, scale)?;
    check_finite_scalar(hidden_scale, "hidden_scale")?;
    let net = Network { hidden, hidden_scale, output: am, scale };
    let outputs =
        py.detach(|| network::outputs(xm, &net)).map_err(|e| to_py_err(e, "network_outputs"))?;
    to_array2(py, outputs, xm.rows(), am.cols())
}

#[pyfunction]
fn simd_path() -> &'static str {
    simd::active_path().name()
}

#[pyfunction]
fn supported_simd_paths() -> Vec<&'static str> {
    simd::supported_paths().into_iter().map(|p| p.name()).collect()
}

#[pyfunction]
#[pyo3(signature = (path=None))]
fn set_simd_path(path: Option<&str>) -> PyResult<()> {
    let parsed = path
        .map(str::parse::<simd::SimdPath>)
        .transpose()
        .map_err(|e| PyValueError::new_err(format!("path: {e}")))?;
    simd::force_path(parsed).map_err(|e| PyValueError::new_err(format!("path: {e}")))
}

#[pyfunction]
fn set_num_threads(num_threads: usize) -> PyResult<()> {
    parallel::set_num_threads(num_threads)
        .map_err(|e| PyRuntimeError::new_err(format!("could not start {num_threads} threads: {e}")))
}

#[pyfunction]
fn get_num_threads() -> usize {
    parallel::num_threads()
}

#[pymodule]
fn _core(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(pack_signs, module)?)?;
    module.add_function(wrap_pyfunction!(check_packed, module)?)?;
    module.add_function(wrap_pyfunction!(unpack_signs, module)?)?;
    module.add_function(wrap_pyfunction!(sign_matmul, module)?)?;
    module.add_function(wrap_pyfunction!(coactivation_counts, module)?)?;
    module.add_function(wrap_pyfunction!(quantize_activations, module)?)?;
    module.add_function(wrap_pyfunction!(quantized_matmul, module)?)?;
    module.add_function(wrap_pyfunction!(activation_patterns, module)?)?;
    module.add_function(wrap_pyfunction!(ntk_gram, module)?)?;
    module.add_function(wrap_pyfunction!(ntk_limit, module)?)?;
    module.add_function(wrap_pyfunction!(train_step, module)?)?;
    module.add_function(wrap_pyfunction!(network_outputs, module)?)?;
    module.add_function(wrap_pyfunction!(packed_network_outputs, module)?)?;
    module.add_function(wrap_pyfunction!(simd_path, module)?)?;
    module.add_function(wrap_pyfunction!(supported_simd_paths, module)?)?;
    module.add_function(wrap_pyfunction!(set_simd_path, module)?)?;
    module.add_function(wrap_pyfunction!(set_num_threads, module)?)?;
    module.add_function(wrap_pyfunction!(get_num_threads, module)?)?;
    module.add("WORD_BITS", bits::WORD_BITS)?;
    module.add("ROW_ALIGN_WORDS", bits::ROW_ALIGN_WORDS)?;
    module.add("MAX_ACTIVATION_BITS", quantize::MAX_BITS)?;
    Ok(())
}
