/* emu_scan_i8.cpp: cuda_scan_i8.cu compiled for the CPU emulation (see cuda_emu.h). */
#include "../cuda_scan_i8.cu"
