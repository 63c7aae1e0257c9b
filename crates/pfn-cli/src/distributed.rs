//! The processes of `pfn train`: this process alone, or, with the cargo feature `mpi`, the ranks of
//! an MPI job (`mpiexec -n R pfn train ...`; see docs/DISTRIBUTED.md).
//!
//! [`Ranks::start`] initialises MPI when the feature is built in (a process started without
//! `mpiexec` is a job of one rank, as MPI's singleton start makes it) and keeps it initialised
//! until the value is dropped. The training loop talks to the ranks through
//! `pfn_train::Collective`; this module only provides the MPI transport and the job-wide exit on
//! an error ([`Ranks::abort`]), without which the other ranks would wait forever in their next
//! all-reduce.

use std::sync::Arc;

use pfn_train::Collective;
#[cfg(not(feature = "mpi"))]
use pfn_train::SingleProcess;

/// The processes of this training run.
pub struct Ranks {
    collective: Arc<dyn Collective>,
    #[cfg(feature = "mpi")]
    mpi: mpi_transport::Job,
}

impl Ranks {
    /// Joins the MPI job when built with the `mpi` feature (MPI is initialised here, once per
    /// process); otherwise this process alone.
    pub fn start() -> anyhow::Result<Self> {
        #[cfg(feature = "mpi")]
        {
            let job = mpi_transport::Job::start()?;
            Ok(Self {
                collective: job.collective(),
                mpi: job,
            })
        }
        #[cfg(not(feature = "mpi"))]
        {
            Ok(Self {
                collective: Arc::new(SingleProcess),
            })
        }
    }

    /// The collective the trainer uses.
    pub fn collective(&self) -> Arc<dyn Collective> {
        Arc::clone(&self.collective)
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.collective.rank()
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.collective.world_size()
    }

    /// Ends every rank of the job with exit code `code` (MPI_Abort); a run of one process just
    /// exits. Call after printing the error.
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if self.size() > 1 {
            self.mpi.abort(code)
        }
        std::process::exit(code)
    }
}

#[cfg(feature = "mpi")]
mod mpi_transport {
    use std::sync::Arc;

    use mpi::collective::SystemOperation;
    use mpi::environment::Universe;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::{Communicator, CommunicatorCollectives};
    use mpi::Threading;
    use pfn_train::{Collective, CollectiveError};

    /// The MPI job: initialised on start, finalised when dropped.
    pub struct Job {
        _universe: Universe,
        world: Arc<World>,
    }

    impl Job {
        pub fn start() -> anyhow::Result<Self> {
            // Only the thread that runs the training loop calls MPI; the engine's and the
            // loader's threads never do (MPI_THREAD_FUNNELED).
            let (universe, threading) = mpi::initialize_with_threading(Threading::Funneled)
                .ok_or_else(|| anyhow::anyhow!("MPI was already initialised in this process"))?;
            if threading < Threading::Funneled {
                anyhow::bail!(
                    "the MPI library provides thread level {threading:?}; pfn train needs Funneled"
                );
            }
            let world = universe.world();
            Ok(Self {
                _universe: universe,
                world: Arc::new(World(world)),
            })
        }

        pub fn collective(&self) -> Arc<dyn Collective> {
            Arc::clone(&self.world) as Arc<dyn Collective>
        }

        pub fn abort(&self, code: i32) -> ! {
            self.world.0.abort(code)
        }
    }

    /// `MPI_COMM_WORLD`.
    pub struct World(SimpleCommunicator);

    impl std::fmt::Debug for World {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "MPI rank {} of {}", self.0.rank(), self.0.size())
        }
    }

    // MPI is initialised with MPI_THREAD_FUNNELED and only the training loop's thread calls these
    // methods; the handle itself is an integer (MPICH) or a pointer to a library-owned object.
    unsafe impl Send for World {}
    unsafe impl Sync for World {}

    // MPI's default error handler on MPI_COMM_WORLD (MPI_ERRORS_ARE_FATAL) ends the whole job on
    // a failed operation, so these never see an error to return.
    impl Collective for World {
        fn rank(&self) -> usize {
            self.0.rank() as usize
        }
        fn world_size(&self) -> usize {
            self.0.size() as usize
        }
        fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
            let send = values.to_vec();
            self.0
                .all_reduce_into(&send[..], values, SystemOperation::sum());
            Ok(())
        }
        fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<(), CollectiveError> {
            let send = values.to_vec();
            self.0
                .all_reduce_into(&send[..], values, SystemOperation::sum());
            Ok(())
        }
        fn all_gather_u64(&self, value: u64) -> Result<Vec<u64>, CollectiveError> {
            let mut all = vec![0u64; self.world_size()];
            self.0.all_gather_into(&value, &mut all[..]);
            Ok(all)
        }
    }
}
