// Moved into the package (exported as @dsops/pulumi/testing, for plugin authors): the tests import it from here as before.
export * from "../../provider/library/testing/store-contract";
