//! Thin PyO3 bindings: convert arguments, check what Python cannot, release the GIL, call
//! the core. No kernel logic lives here.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::{parallel, simd};

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
    module.add_function(wrap_pyfunction!(simd_path, module)?)?;
    module.add_function(wrap_pyfunction!(supported_simd_paths, module)?)?;
    module.add_function(wrap_pyfunction!(set_simd_path, module)?)?;
    module.add_function(wrap_pyfunction!(set_num_threads, module)?)?;
    module.add_function(wrap_pyfunction!(get_num_threads, module)?)?;
    Ok(())
}
