/* emu_scan_f32.cpp: cuda_scan_f32.cu compiled for the CPU emulation (see cuda_emu.h). */
#include "../cuda_scan_f32.cu"
