//! FFT generic over the emulated scalar (in progress).
