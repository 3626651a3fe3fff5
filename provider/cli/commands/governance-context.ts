/** The governance context now lives in provider/compose (every face shares it); kept here for the CLI's commands. */
export { governanceContext } from "../../compose/governance-context";
