/* emu_select.cpp: cuda_select.cu compiled for the CPU emulation (see cuda_emu.h). */
#include "../cuda_select.cu"
