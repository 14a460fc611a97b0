self.SAMTAB_SETTINGS = {"encodeService": null};
