//! The CUDA probe: whether a driver and a device answer, asked so that a missing driver
//! becomes an answer instead of a panic on cubecl's own thread (past any catch).

#[cfg(feature = "cuda")]
use burn::prelude::Device;

/// Whether a CUDA driver and device answer, without letting a missing driver panic the run.
pub(super) fn answers() -> Result<(), String> {
    #[cfg(feature = "cuda")]
    {
        if !std::path::Path::new("/dev/nvidiactl").exists() {
            return Err("/dev/nvidiactl is missing".into());
        }
        // cubecl panics when the driver library or the device is missing: ask in a way that
        // turns that into an answer, with the panic's message kept out of the user's terminal.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        // No tensor is made: a device's float type can only be set before its first one.
        let probe = std::panic::catch_unwind(|| {
            Device::enumerate(burn::tensor::DeviceType::Cuda)
                .into_iter()
                .count()
        });
        std::panic::set_hook(hook);
        return match probe {
            Ok(0) => Err("no CUDA device".into()),
            Ok(_) => Ok(()),
            Err(_) => Err("the driver did not answer".into()),
        };
    }
    #[allow(unreachable_code)]
    Err("built without CUDA".into())
}
