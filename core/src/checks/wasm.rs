mod v0_1;
