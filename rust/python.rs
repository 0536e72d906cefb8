//! Thin PyO3 bindings: convert arguments, check what the core cannot name, release the
//! GIL, call the core, convert the result. No kernel logic lives here; argument
//! validation with user-facing messages lives in `pybinscale/kernels.py`, and these
//! functions are private (`pybinscale._core`).

use numpy::ndarray::{Array1, Array2};
use numpy::{Element, IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::bits::{self, BitMatrix, Matrix, PackedBits, Real};
use crate::error::Error;
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

/// A float32 or float64 array, borrowed read-only.
enum RealArray<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

impl<'py> RealArray<'py> {
    fn extract(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Self> {
        if let Ok(array) = obj.extract::<PyReadonlyArray2<'py, f32>>() {
            return Ok(RealArray::F32(array));
        }
        if let Ok(array) = obj.extract::<PyReadonlyArray2<'py, f64>>() {
            return Ok(RealArray::F64(array));
        }
        Err(PyTypeError::new_err(format!("{name}: expected a 2-D float32 or float64 numpy array")))
    }
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

fn check_finite<T: Real>(matrix: Matrix<'_, T>, name: &str) -> PyResult<()> {
    matrix.check_finite().map_err(|e| to_py_err(e, name))
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
    let packed = match RealArray::extract(a, name)? {
        RealArray::F32(array) => {
            let m = matrix_view(&array, name)?;
            py.detach(|| bits::pack_signs(m))
        }
        RealArray::F64(array) => {
            let m = matrix_view(&array, name)?;
            py.detach(|| bits::pack_signs(m))
        }
    }
    .map_err(|e| to_py_err(e, name))?;
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
    let (quantized, rows, cols) = match RealArray::extract(x, "X")? {
        RealArray::F32(array) => {
            let m = matrix_view(&array, "X")?;
            (py.detach(|| quantize::quantize(m, bits)), m.rows(), m.cols())
        }
        RealArray::F64(array) => {
            let m = matrix_view(&array, "X")?;
            (py.detach(|| quantize::quantize(m, bits)), m.rows(), m.cols())
        }
    };
    let quantized = quantized.map_err(|e| to_py_err(e, "X"))?;
    Ok((
        to_array2(py, quantized.values, rows, cols)?,
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
    Ok(match RealArray::extract(x, "X")? {
        RealArray::F32(array) => {
            let m = matrix_view(&array, "X")?;
            let out = py
                .detach(|| quantize::quantized_product(m, w, bits, |v| v as f32))
                .map_err(|e| to_py_err(e, "X"))?;
            to_array2(py, out, m.rows(), w.rows())?.into_any()
        }
        RealArray::F64(array) => {
            let m = matrix_view(&array, "X")?;
            let out = py
                .detach(|| quantize::quantized_product(m, w, bits, |v| v))
                .map_err(|e| to_py_err(e, "X"))?;
            to_array2(py, out, m.rows(), w.rows())?.into_any()
        }
    })
}

/// Runs `$body` with `$x`, `$w` (and optional `$z`) viewed as matrices of one float type.
macro_rules! with_same_dtype {
    ($x:ident, $w:ident, $z:ident, |$xm:ident, $wm:ident, $zm:ident| $body:expr) => {
        match RealArray::extract($x, "X")? {
            RealArray::F32(x_array) => {
                let w_array: PyReadonlyArray2<'_, f32> =
                    $w.extract().map_err(|_| same_dtype_error("W"))?;
                let z_array: Option<PyReadonlyArray2<'_, f32>> =
                    $z.map(|z| z.extract().map_err(|_| same_dtype_error("Z"))).transpose()?;
                let $xm = matrix_view(&x_array, "X")?;
                let $wm = matrix_view(&w_array, "W")?;
                let $zm = z_array.as_ref().map(|z| matrix_view(z, "Z")).transpose()?;
                $body
            }
            RealArray::F64(x_array) => {
                let w_array: PyReadonlyArray2<'_, f64> =
                    $w.extract().map_err(|_| same_dtype_error("W"))?;
                let z_array: Option<PyReadonlyArray2<'_, f64>> =
                    $z.map(|z| z.extract().map_err(|_| same_dtype_error("Z"))).transpose()?;
                let $xm = matrix_view(&x_array, "X")?;
                let $wm = matrix_view(&w_array, "W")?;
                let $zm = z_array.as_ref().map(|z| matrix_view(z, "Z")).transpose()?;
                $body
            }
        }
    };
}

fn same_dtype_error(name: &str) -> PyErr {
    PyTypeError::new_err(format!("{name}: expected a 2-D array of the same float dtype as X"))
}

#[pyfunction]
fn activation_patterns<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    quantized: bool,
) -> PyResult<Bound<'py, PyArray2<u64>>> {
    let none: Option<&Bound<'py, PyAny>> = None;
    let packed = with_same_dtype!(x, w, none, |xm, wm, _zm| {
        check_finite(xm, "X")?;
        check_finite(wm, "W")?;
        py.detach(|| gram::activation_patterns(xm, wm, quantized))
    })
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
    let (gram, rows, cols) = with_same_dtype!(x, w, z, |xm, wm, zm| {
        check_finite(xm, "X")?;
        check_finite(wm, "W")?;
        if let Some(zm) = zm {
            check_finite(zm, "Z")?;
        }
        let cols = zm.map_or(xm.rows(), |zm| zm.rows());
        (py.detach(|| gram::ntk_gram(xm, wm, zm, kappa, quantized)), xm.rows(), cols)
    });
    to_array2(py, gram.map_err(|e| to_py_err(e, "ntk_gram"))?, rows, cols)
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
    // X doubles as the "weights" slot so the dtype macro can be shared.
    let (kernel, rows, cols) = with_same_dtype!(x, x, z, |xm, _wm, zm| {
        check_finite(xm, "X")?;
        if let Some(zm) = zm {
            check_finite(zm, "Z")?;
        }
        let cols = zm.map_or(xm.rows(), |zm| zm.rows());
        (py.detach(|| ntk::arccos_ntk(xm, zm, kappa, output_layer)), xm.rows(), cols)
    });
    to_array2(py, kernel.map_err(|e| to_py_err(e, "ntk_limit"))?, rows, cols)
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
